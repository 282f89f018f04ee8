"""The production process definitions in deploy/: the Procfile's commands run for real on PostgreSQL + Redis (two web
processes, two workers, a scheduler), and the systemd units, compose file and Dockerfile run those same commands."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
import yaml
from bs4 import BeautifulSoup

from blametrail.cli import build_parser
from blametrail.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SUBCOMMANDS = {"release": ["db", "upgrade"], "web": ["serve"], "worker": ["worker"], "scheduler": ["scheduler"]}
PASSWORD = "correct-horse-battery"
PRODUCTION_ONLY = "runs the production processes against PostgreSQL and Redis: pass 2 only " \
                  "(set BLAMETRAIL_TEST_DATABASE_URL and BLAMETRAIL_TEST_REDIS_URL)"


# --- reading deploy/ ---------------------------------------------------------------------------------------------

def procfile() -> dict[str, str]:
    """Return the Procfile's process types and their shell commands."""
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return dict(m.groups() for m in (re.match(r"^([a-z]+):\s*(.+)$", line) for line in lines) if m)


def env_example() -> dict[str, str]:
    """Return the KEY=value pairs of deploy/blametrail.env.example."""
    pairs = {}
    for line in (DEPLOY / "blametrail.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and not value.startswith(("'", '"')), f"not KEY=value: {line!r}"
            pairs[key] = value
    return pairs


def expand_defaults(command: str) -> str:
    """Replace ${VAR:-default} with its default, as a shell without VAR set would."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", command)


def unit_exec_starts() -> dict[str, list[str]]:
    """Return each systemd unit's ExecStart argv."""
    found = {}
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        lines = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
        assert len(lines) == 1, unit.name
        found[unit.name] = shlex.split(lines[0].removeprefix("ExecStart="))
    return found


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def assert_blametrail_command(argv: list[str], where: str) -> str:
    """Check argv runs `blametrail` with arguments its real parser accepts; return the process kind."""
    assert Path(argv[0]).name == "blametrail", f"{where}: {argv}"
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{where}: `blametrail` refuses the arguments {argv[1:]}")
    kinds = [kind for kind, sub in SUBCOMMANDS.items() if argv[1:1 + len(sub)] == sub]
    assert kinds, f"{where}: {argv} is none of {SUBCOMMANDS}"
    return kinds[0]


def setting_names() -> set[str]:
    return {"BLAMETRAIL_" + name.upper() for name in Settings.model_fields}


# --- the definitions agree with the CLI and the settings (both passes; no servers) ---------------------------------

def test_procfile_systemd_compose_and_dockerfile_run_real_commands():
    kinds = {name: assert_blametrail_command(shlex.split(expand_defaults(cmd)), f"Procfile {name}")
             for name, cmd in procfile().items()}
    assert kinds == {k: k for k in SUBCOMMANDS}

    units = {name: assert_blametrail_command(argv, name) for name, argv in unit_exec_starts().items()}
    assert units == {"blametrail-web.service": "web", "blametrail-worker@.service": "worker",
                     "blametrail-scheduler.service": "scheduler", "blametrail-migrate.service": "release"}

    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "scheduler"} <= set(services)
    ran = {name: assert_blametrail_command(svc["command"], f"compose {name}")
           for name, svc in services.items() if "command" in svc and svc["command"][0] == "blametrail"}
    assert ran == {"migrate": "release", "web": "web", "worker": "worker", "scheduler": "scheduler"}
    assert services["web"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 2
    for name in ("web", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"

    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert cmd and assert_blametrail_command(yaml.safe_load(cmd.group(1)), "Dockerfile CMD") == "web"


def test_env_example_and_compose_set_only_real_settings_with_valid_values():
    example = env_example()
    assert set(example) <= setting_names(), set(example) - setting_names()
    settings = Settings(_env_file=None, **{k.removeprefix("BLAMETRAIL_").lower(): v for k, v in example.items()})
    assert (settings.dev_mode, settings.cookie_secure, settings.embedded_workers, settings.monitor_scheduler) == \
        (False, True, 0, False)
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.resolved_queue_url.startswith("redis://")

    environment = {k: expand_defaults(str(v)) for k, v in compose()["x-app"]["environment"].items()}
    assert set(environment) <= setting_names(), set(environment) - setting_names()
    values = {k.removeprefix("BLAMETRAIL_").lower(): re.sub(r"\$\{\w+:\?[^}]*\}", "x", v) for k, v in environment.items()}
    assert Settings(_env_file=None, **values).dev_mode is False


def test_compose_config_is_accepted_by_docker_compose():
    if not os.environ.get("BLAMETRAIL_TEST_DATABASE_URL"):
        pytest.skip("runs docker compose (seconds): pass 2 only; the YAML checks above run in both passes")
    tools = [[t] for t in ("docker-compose",) if shutil.which(t)]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        tools.append(["docker", "compose"])
    if not tools:
        if os.environ.get("CI"):
            pytest.fail("neither `docker compose` nor `docker-compose` is installed (scripts/test-setup.sh installs it)")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (the YAML checks above still ran)")
    env = {**os.environ, "POSTGRES_PASSWORD": "pw", "BLAMETRAIL_SECRET_KEY": "key"}
    for tool in tools:
        done = subprocess.run([*tool, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(tool)} config: {done.stderr}"
        missing = subprocess.run([*tool, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                                 env={k: v for k, v in env.items() if k != "BLAMETRAIL_SECRET_KEY"},
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode != 0 and "BLAMETRAIL_SECRET_KEY" in missing.stdout + missing.stderr


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing on CI")
        pytest.skip("systemd-analyze is not installed")
    blametrail = tmp_path / "bin" / "blametrail"  # why: verify checks that ExecStart's binary exists
    blametrail.parent.mkdir()
    blametrail.write_text("#!/bin/sh\n")
    blametrail.chmod(0o755)
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/blametrail/venv/bin/blametrail", str(blametrail))
        (tmp_path / unit.name).write_text(text.replace("/etc/blametrail/blametrail.env",
                                                       str(DEPLOY / "blametrail.env.example")))
    template = (tmp_path / "blametrail-worker@.service").read_text()
    for n in (1, 2):  # why: the target wants instances 1 and 2 of the template
        (tmp_path / f"blametrail-worker@{n}.service").write_text(template)
    units = sorted(str(p) for p in tmp_path.iterdir() if p.suffix in (".service", ".target") and "@." not in p.name)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# --- the Procfile for real: 2 web processes, 2 workers, a scheduler on PostgreSQL + Redis (pass 2) -----------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _path_with_blametrail(tmp_path: Path) -> str:
    """Return a PATH where `blametrail` is the installed console script, else a shim running this checkout's CLI."""
    installed = Path(sys.executable).parent / "blametrail"
    if installed.exists():
        return f"{installed.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    shim = tmp_path / "shim" / "blametrail"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m blametrail.cli \"$@\"\n")
    shim.chmod(0o755)
    return f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}"


class Browser:
    """A logged-in person: cookies kept by hand so the Secure ones (BLAMETRAIL_COOKIE_SECURE=true) go over plain
    HTTP here — TLS ends at the proxy in production — and so one session can be replayed on another process."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            jar = SimpleCookie()
            jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response

    def _headers(self) -> dict:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, url: str) -> httpx.Response:
        return self._keep(httpx.get(url, headers=self._headers(), timeout=30))

    def post(self, url: str, data: dict) -> httpx.Response:
        return self._keep(httpx.post(url, data={**data, "csrftoken": self.cookies.get("csrftoken", "")},
                                     headers=self._headers(), timeout=30))

    def login(self, base: str, email: str) -> None:
        self.get(f"{base}/login")
        response = self.post(f"{base}/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.text[:500]


@pytest.fixture
def production_env(database_url, redis_url, tmp_path):
    if not (os.environ.get("BLAMETRAIL_TEST_DATABASE_URL") and redis_url):
        pytest.skip(PRODUCTION_ONLY)
    from blametrail.jobs.queue import make_huey

    make_huey(redis_url).flush()  # why: jobs an earlier test left in this Redis database are not ours to run
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    env.update(env_example())
    env.update(BLAMETRAIL_DATABASE_URL=database_url, BLAMETRAIL_QUEUE_URL=redis_url, BLAMETRAIL_LOG_LEVEL="WARNING",
               BLAMETRAIL_DATA_DIR=str(tmp_path / "data"), BLAMETRAIL_SECRET_KEY="test-production-secret",
               PATH=_path_with_blametrail(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    return env


def run(env: dict, command: str, **extra) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-c", command], env={**env, **extra}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done


def test_procfile_processes_serve_one_installation(production_env, factory, tmp_path):
    env, processes = production_env, {}
    commands = procfile()
    assert "database is up to date" in run(env, commands["release"]).stdout
    owner = factory.member(factory.org(plan="pro"), "owner", password=PASSWORD)  # the CLI's own tests cover org/user
    api = owner.headers

    ports = {"web.1": _free_port(), "web.2": _free_port()}
    plan = [("web.1", commands["web"], {"PORT": str(ports["web.1"]), "WEB_CONCURRENCY": "2"}),
            ("web.2", commands["web"], {"PORT": str(ports["web.2"]), "WEB_CONCURRENCY": "1"}),
            ("worker.1", commands["worker"], {}), ("worker.2", commands["worker"], {}),
            ("scheduler.1", commands["scheduler"], {})]
    try:
        for name, command, extra in plan:
            log = (tmp_path / f"{name}.log").open("w")
            processes[name] = subprocess.Popen(["bash", "-c", f"exec {command}"], env={**env, **extra}, stdout=log,
                                               stderr=subprocess.STDOUT)
        web1, web2 = (f"http://127.0.0.1:{ports[n]}" for n in ("web.1", "web.2"))
        deadline = time.monotonic() + 60
        for base in (web1, web2):
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                dead = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
                assert not dead and time.monotonic() < deadline, _logs(tmp_path, f"{base} did not start; exited: {dead}")
                time.sleep(0.2)

        # The scheduler process (the web processes run none) checks a monitor created through web.2.
        monitor = httpx.post(f"{web2}/api/v1/monitors", headers=api, timeout=30, json={
            "name": "web.1 health", "url": f"{web1}/healthz", "interval_seconds": 10, "timeout_seconds": 5}).json()
        checks = _wait(lambda: httpx.get(f"{web1}/api/v1/monitors/{monitor['id']}/checks", headers=api,
                                         timeout=30).json(), lambda c: len(c) > 0, 30)
        assert checks[0]["ok"] is True and checks[0]["status_code"] == 200

        # Log in and resolve on web.1; the same session, and a worker's draft, show on web.2.
        incident = httpx.post(f"{web1}/api/v1/incidents", headers=api, timeout=30, json={
            "title": "Checkout 502s", "severity": "SEV-2", "services": ["checkout"]}).json()
        httpx.post(f"{web1}/api/v1/incidents/{incident['id']}/updates", headers=api, timeout=30,
                   json={"body": "Payment pool exhausted; rolled back checkout."}).raise_for_status()
        person = Browser()
        person.login(web1, owner.email)
        assert person.post(f"{web1}/incidents/{incident['id']}/resolve", {"confirm": "yes"}).status_code == 303
        pm = _wait(lambda: httpx.get(f"{web2}/api/v1/incidents/{incident['id']}/postmortem", headers=api,
                                     timeout=30).json(), lambda p: p["status"] not in ("queued", "generating"), 45)
        assert pm["status"] == "draft", pm
        page = person.get(f"{web2}/incidents/{incident['id']}")
        assert page.status_code == 200, page.text[:500]
        card = BeautifulSoup(page.text, "html.parser").select_one("#postmortem-card")
        assert card is not None and card["data-status"] == "draft"
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        exits = {}
        for name, proc in processes.items():
            try:
                exits[name] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                exits[name] = "killed after 30 s"
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly, so serve ends "by" the signal
    assert all(code in (0, -signal.SIGTERM) for code in exits.values()), _logs(tmp_path, f"exits: {exits}")


def _wait(fetch, done, seconds: float):
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _logs(tmp_path: Path, message: str) -> str:
    return message + "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("*.log")))
