"""`blametrail deploy record` as a CI step: a real subprocess in a real git repository against a running server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deploys.test_gitlog import Repo

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(app):
    """Serve the test app with uvicorn in a thread on a free port."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def owner(factory):
    return factory.member(factory.org())


@pytest.fixture
def repo(tmp_path):
    r = Repo(tmp_path / "ci" / "checkout")
    r.commit("Initial checkout service", {"app.py": "print('hi')\n"}, "2026-11-20T10:00:00Z")
    r.tag("v2.13.0")
    r.second = r.commit("Add payment pool metrics", {"metrics.py": "POOL = 1\n", "app.py": "import metrics\n"},
                        "2026-11-25T16:00:00Z", author="Sam Ops")
    r.head = r.commit("Limit payment pool to 5\n\nIncident follow-up.", {"pool.py": "SIZE = 5\n"},
                      "2026-11-26T09:40:00Z")
    return r


def cli_env(repo: Repo, server: str | None, token: str | None) -> dict:
    env = {k: v for k, v in repo.env.items() if not k.startswith("BLAMETRAIL_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    if server:
        env["BLAMETRAIL_URL"] = server
    if token:
        env["BLAMETRAIL_TOKEN"] = token
    return env


def record(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blametrail.cli", "deploy", "record", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def deploys(server: str, owner) -> list[dict]:
    r = httpx.get(f"{server}/api/v1/deploys", headers=owner.headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_records_the_deploy_with_commits_and_files_once(server, owner, repo):
    env = cli_env(repo, server, owner.token)
    proc = record(repo.root, env, "--service", "checkout", "--url", "https://ci.acme.test/run/88")
    assert proc.returncode == 0, proc.stderr
    assert "read 2 commit(s) from v2.13.0..HEAD" in proc.stderr
    printed = json.loads(proc.stdout)
    [d] = deploys(server, owner)
    assert d["id"] == printed["id"]
    assert (d["service"], d["environment"], d["source"]) == ("checkout", "production", "cli")
    assert d["version"] == f"v2.13.0-2-g{repo.head[:7]}"
    assert d["external_id"] == f"cli:checkout:production:{repo.head}"
    assert d["url"] == "https://ci.acme.test/run/88"
    assert [(c["sha"], c["author"], sorted(c["files"])) for c in d["commits"]] == [
        (repo.head, "Jo Dev", ["pool.py"]), (repo.second, "Sam Ops", ["app.py", "metrics.py"])]
    assert d["commits"][0]["message"] == "Limit payment pool to 5\n\nIncident follow-up."
    assert d["commits"][0]["committed_at"] == "2026-11-26T09:40:00Z"

    again = record(repo.root, env, "--service", "checkout", "--url", "https://ci.acme.test/run/89")
    assert again.returncode == 0, again.stderr
    assert "already recorded" in again.stderr and json.loads(again.stdout)["id"] == d["id"]
    assert len(deploys(server, owner)) == 1


def test_since_and_explicit_version_and_environment(server, owner, repo):
    env = cli_env(repo, server, owner.token)
    proc = record(repo.root, env, "--service", "checkout", "--version", "2026.11.26", "--environment", "staging",
                  "--since", repo.second)
    assert proc.returncode == 0, proc.stderr
    [d] = deploys(server, owner)
    assert (d["version"], d["environment"]) == ("2026.11.26", "staging")
    assert [c["sha"] for c in d["commits"]] == [repo.head]


def test_bad_token_exits_2_with_one_line(server, owner, repo):
    proc = record(repo.root, cli_env(repo, server, "bt_not-a-real-token"), "--service", "checkout")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("blametrail: error:")]
    assert len(lines) == 1 and "(401)" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert deploys(server, owner) == []


def test_unreachable_server_and_missing_settings_exit_2(owner, repo):
    port = _free_port()  # nothing listens there
    proc = record(repo.root, cli_env(repo, f"http://127.0.0.1:{port}", owner.token), "--service", "checkout")
    assert proc.returncode == 2 and "cannot reach" in proc.stderr and "Traceback" not in proc.stderr
    proc = record(repo.root, cli_env(repo, None, owner.token), "--service", "checkout")
    assert proc.returncode == 2 and "BLAMETRAIL_URL" in proc.stderr
    proc = record(repo.root, cli_env(repo, "http://127.0.0.1:1", owner.token), "--service", "checkout",
                  "--since", "v0.0.1")
    assert proc.returncode == 2 and "unknown revision 'v0.0.1'" in proc.stderr


def test_dry_run_prints_json_and_sends_nothing(server, owner, repo):
    proc = record(repo.root, cli_env(repo, server, owner.token), "--service", "checkout", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["service"] == "checkout" and body["source"] == "cli"
    assert body["external_id"] == f"cli:checkout:production:{repo.head}"
    assert [c["sha"] for c in body["commits"]] == [repo.head, repo.second]
    assert deploys(server, owner) == []


def test_outside_a_repository_records_without_commits(server, owner, repo, tmp_path):
    outside = tmp_path / "artifacts"
    outside.mkdir()
    env = {**cli_env(repo, server, owner.token), "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    proc = record(outside, env, "--service", "checkout")
    assert proc.returncode == 2 and "--version is required outside a git repository" in proc.stderr
    proc = record(outside, env, "--service", "checkout", "--version", "v2.14.0", "--external-id", "build-77")
    assert proc.returncode == 0, proc.stderr
    assert "not inside a git repository" in proc.stderr
    [d] = deploys(server, owner)
    assert (d["version"], d["commits"], d["external_id"]) == ("v2.14.0", [], "build-77")
