"""Fault-test helpers: processes with captured logs, private PostgreSQL/Redis servers, an LLM server that holds calls.

Deadlines in here only stop a hung test; they are never the thing a test asserts.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.ai.wire import openai_events

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("launch.py")
T = TypeVar("T")
_PORTS = random.SystemRandom()  # why: not the global generator, which some tests seed
PASS_TWO_ONLY = ("runs in the PostgreSQL + Redis pass only (BLAMETRAIL_TEST_DATABASE_URL set): it starts its own "
                 "private server")


# --- small things -----------------------------------------------------------------------------------

def free_port() -> int:
    """Return a free loopback port below the ephemeral range.

    Why: the servers here restart on the same port many times; a port from the ephemeral range can meanwhile become
    the local end of some outgoing connection on this machine, and the restarted server could not bind it.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for _ in range(200):
        port = _PORTS.randrange(10_000, low) if low > 12_000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise AssertionError("no free port found")


def need(found: str | None, what: str) -> str:
    """Return a binary's path, or skip (locally) / fail (under CI) when it is missing."""
    if found and os.path.exists(found):
        return found
    reason = f"{what} is not installed; this fault test starts its own private server"
    if os.environ.get("CI"):
        pytest.fail(reason + " — CI must not skip it", pytrace=False)
    pytest.skip(reason)


def wait_until(check: Callable[[], T], *, what: str, timeout: float = 90.0, interval: float = 0.05,
               watch: Iterable[Proc] = ()) -> T:
    """Poll `check` until it returns something truthy; fail if a watched process dies or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc in watch:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}:\n"
                                     f"{proc.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(interval)


def blametrail_env(**settings: object) -> dict[str, str]:
    """The environment of a blametrail process: no inherited BLAMETRAIL_* variables, these settings set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env["BLAMETRAIL_LOG_LEVEL"] = "WARNING"  # why: keeps the captured logs to what matters (no access log)
    env.update({f"BLAMETRAIL_{k.upper()}": str(v) for k, v in settings.items() if v is not None})
    return env


def healthy(base: str) -> bool:
    """Tell whether a server answers /healthz with 200."""
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- processes ---------------------------------------------------------------------------------------

class Proc:
    """One child process whose stdout and stderr go to a log file."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path) -> None:
        self.name, self.popen, self.log_path = name, popen, log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, chars: int = 6000) -> str:
        text = self.log()
        return text if len(text) <= chars else "…" + text[-chars:]

    def kill9(self) -> int:
        """Send SIGKILL and reap the process; return its exit status."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then SIGKILL if it does not end in time; return the exit status."""
        if self.alive():
            self.popen.terminate()
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=30)

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait until a launcher started with wait_go has imported everything."""
        wait_until(lambda: "launcher ready" in self.log(), what=f"{self.name} to be ready", timeout=timeout,
                   watch=[self])

    def go(self) -> None:
        """Let a launcher started with wait_go run its command."""
        self.popen.stdin.write(b"go\n")
        self.popen.stdin.flush()


class Procs:
    """The processes of one test: started with logs in a directory, all stopped at the end, logs shown on failure."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.all: list[Proc] = []
        self.extra_logs: list[tuple[str, Path]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None, *, stdin: bool = False) -> Proc:
        log_path = self.log_dir / f"{len(self.all):03d}-{name}.log"
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, start_new_session=True)
        proc = Proc(name, popen, log_path)
        self.all.append(proc)
        return proc

    def blametrail(self, name: str, *args: str, env: dict[str, str]) -> Proc:
        """Start `python -m blametrail.cli ARGS`."""
        return self.start(name, [sys.executable, "-m", "blametrail.cli", *args], env)

    def launcher(self, name: str, *args: str, env: dict[str, str], wait_go: bool = False, fork_server: bool = False,
                 preload: Iterable[str] = (), die_after_commit: str | None = None) -> Proc:
        """Start a blametrail command through tests/faults/launch.py (warm start, fork server, death after commit)."""
        cmd = [sys.executable, str(LAUNCHER)]
        if wait_go:
            cmd.append("--wait-go")
        if fork_server:
            cmd.append("--fork-server")
        for module in preload:
            cmd += ["--preload", module]
        if die_after_commit:
            cmd += ["--die-after-commit", die_after_commit]
        return self.start(name, [*cmd, "--", *args], env, stdin=wait_go or fork_server)

    def fork_server(self, name: str, *args: str, env: dict[str, str], preload: Iterable[str] = (),
                    die_after_commit: str | None = None) -> ForkServer:
        """Start a fork server for a blametrail command and wait until it has imported everything."""
        proc = self.launcher(name, *args, env=env, fork_server=True, preload=preload,
                             die_after_commit=die_after_commit)
        proc.wait_ready()
        return ForkServer(proc)

    def close(self) -> None:
        """Stop every process still running: SIGTERM to all at once, SIGKILL to those still there after 15 s."""
        running = [p for p in self.all if p.alive()]
        for proc in running:
            proc.popen.terminate()
        deadline = time.monotonic() + 15
        for proc in running:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=30)
        for proc in self.all:
            if proc.popen.stdin:
                try:
                    proc.popen.stdin.close()
                except OSError:
                    pass

    def report(self, shown: int = 6) -> str:
        """The logs worth reading after a failure: every process's exit status, the last few logs in full."""
        lines = [f"{p.name} (pid {p.pid}): {'running' if p.alive() else f'exit {p.popen.returncode}'}  {p.log_path}"
                 for p in self.all]
        parts = ["\n".join(lines)]
        for proc in self.all[-shown:]:
            parts.append(f"----- {proc.name} -----\n{proc.tail()}")
        for name, path in self.extra_logs:
            try:
                text = path.read_text(errors="replace")
            except OSError as exc:
                text = f"(unreadable: {exc})"
            parts.append(f"----- {name} -----\n{text[-6000:]}")
        return "\n".join(parts)


class ForkServer:
    """The test's side of `launch.py --fork-server`: fork a fresh process running the command, kill it, see it end."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.children: list[int] = []

    def fork(self, *args: str) -> int:
        """Start one more process running the command with these arguments appended; return its pid."""
        known = len(self.children)
        self.proc.popen.stdin.write(" ".join(["fork", *args]).encode() + b"\n")
        self.proc.popen.stdin.flush()

        def forked() -> list[int]:
            pids = [int(p) for p in re.findall(r"^launcher: forked (\d+)$", self.proc.log(), re.MULTILINE)]
            return pids if len(pids) > known else []

        self.children = wait_until(forked, what=f"{self.proc.name} to fork", timeout=60, watch=[self.proc])
        return self.children[-1]

    def exit_status(self, pid: int) -> int | None:
        """Return how a child ended (-9 for SIGKILL), or None while it runs."""
        found = re.search(rf"^launcher: exited {pid} (-?\d+)$", self.proc.log(), re.MULTILINE)
        return int(found.group(1)) if found else None

    def wait_exit(self, pid: int, timeout: float = 60) -> int:
        """Wait until a child has ended; return its status."""
        return wait_until(lambda: self.exit_status(pid) is not None and (self.exit_status(pid),), timeout=timeout,
                          what=f"process {pid} to end", watch=[self.proc])[0]

    def kill9(self, pid: int) -> int:
        """kill -9 one child and wait until it is gone; return its status."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait_exit(pid)


def start_server(procs: Procs, env: dict[str, str], *, name: str = "serve", port: int | None = None,
                 timeout: float = 90) -> tuple[str, Proc]:
    """Start `blametrail serve` and wait until it answers; return its base URL and process."""
    port = port or free_port()
    proc = procs.blametrail(name, "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(base), what=f"{name} on {base}", timeout=timeout, watch=[proc])
    return base, proc


# --- private servers ---------------------------------------------------------------------------------

def postgres_bindir() -> str | None:
    """Return the directory of PostgreSQL's server binaries (initdb, pg_ctl), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    if found:
        return str(Path(found[0]).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and os.path.exists(os.path.join(out, "initdb")):
            return out
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a random port (run as the `postgres` OS user when we are root)."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="blametrail-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:  # why: initdb refuses to run as root
            shutil.chown(self.root, user="postgres", group="postgres")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        cmd = [os.path.join(self.bindir, tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                                 f"{self.log()[-4000:]}")
        return done.stdout

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        conf = {
            "port": self.port, "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.root}'",
            "max_connections": 200, "shared_buffers": "'32MB'", "fsync": "off", "full_page_writes": "off",
            "logging_collector": "off", "log_min_messages": "warning",
        }
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# private test cluster\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "120", "start")

    def restart(self, mode: str = "fast") -> None:
        """Restart the server (`pg_ctl restart -m MODE`): every open connection is cut."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-m", mode, "-w", "-t", "120", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-v",
                  "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A throw-away redis-server on a random port, no persistence; kill it and start it again on the same port."""

    def __init__(self, procs: Procs, binary: str) -> None:
        self.procs, self.binary = procs, binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="blametrail-redis-"))
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = self.procs.start("redis", [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                               "--save", "", "--appendonly", "no", "--dir", str(self.dir)])
        wait_until(self.ping, what=f"redis-server on port {self.port}", timeout=30, watch=[self.proc])

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """kill -9 the server."""
        assert self.proc is not None
        self.proc.kill9()

    def destroy(self) -> None:
        if self.proc is not None and self.proc.alive():
            self.proc.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- an OpenAI-compatible LLM server ------------------------------------------------------------------

class LocalOpenAI:
    """Chat completions over HTTP: postmortem calls get `reply`, others a 400; counts calls and can hold them open.

    While holding, each new postmortem call waits without an answer until `release()` or until its client goes away
    (a killed worker), so a kill lands in the middle of a generation. A call is a postmortem call when its output
    tool's schema has the postmortem's `root_cause` section (summary refreshes are the other kind).
    """

    def __init__(self, reply: dict) -> None:
        self.reply = reply
        self.calls: Counter[str] = Counter()  # by kind: "postmortem" or "other"
        self.holding = 0  # postmortem calls waiting right now
        self.abandoned = 0  # held calls whose client went away
        self.hold = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                kind = _call_kind(raw)
                with outer._lock:
                    outer.calls[kind] += 1
                if kind == "postmortem" and outer.hold.is_set() and not outer._wait(self.connection):
                    self.close_connection = True
                    return
                status, body = (200, outer.reply) if kind == "postmortem" else (400, {"error": {
                    "message": "this test server only drafts postmortems", "type": "invalid_request_error"}})
                streamed = status == 200 and b'"stream":true' in raw.replace(b" ", b"")
                # why: BlameTrail streams every model answer; send the chunks OpenAI would send for this reply
                payload = "".join(openai_events({"json": body})).encode() if streamed else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/event-stream" if streamed else "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _wait(self, conn: socket.socket) -> bool:
        """Hold a call; return False if its client went away first."""
        with self._lock:
            self.holding += 1
        try:
            while not self._released.is_set():
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable:
                    try:
                        gone = conn.recv(1, socket.MSG_PEEK) == b""
                    except OSError:
                        gone = True
                    if gone:
                        with self._lock:
                            self.abandoned += 1
                        return False
                    time.sleep(0.05)
            return True
        finally:
            with self._lock:
                self.holding -= 1

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def hold_calls(self) -> None:
        """From now on, hold every new postmortem call open."""
        self._released.clear()
        self.hold.set()

    def release(self) -> None:
        """Stop holding: answer the waiting calls and every later one at once."""
        self.hold.clear()
        self._released.set()

    def __enter__(self) -> LocalOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


def _call_kind(raw: bytes) -> str:
    try:
        tools = json.loads(raw or b"{}").get("tools") or []
    except ValueError:
        return "other"
    for tool in tools:
        if "root_cause" in ((tool.get("function") or {}).get("parameters") or {}).get("properties", {}):
            return "postmortem"
    return "other"


# --- what the database says -----------------------------------------------------------------------------

def open_incidents(rt, member, n: int, *, title: str = "Checkout errors") -> list[int]:
    """Open n incidents (with one update each) through the services; return their ids."""
    from blametrail import db
    from blametrail.incidents import service as incidents
    from blametrail.incidents.schemas import IncidentCreate, UpdateCreate

    ids = []
    with db.transaction(rt.factory) as s:
        for i in range(n):
            inc = incidents.create(session=s, actor=member.actor, now=rt.clock.now(),
                                   data=IncidentCreate(title=f"{title} #{i + 1}", services=["checkout"]))
            incidents.add_update(session=s, actor=member.actor, incident=inc, now=rt.clock.now(),
                                 data=UpdateCreate(body="Rolled back checkout v9.1.0; errors gone."))
            ids.append(inc.id)
    return ids


def postmortem_outcomes(factory, incident_ids: Iterable[int]) -> dict[int, dict]:
    """Per incident: its postmortems' status, engine, error, attempts, run statuses and number of AI revisions."""
    from sqlalchemy import func, select

    from blametrail import db
    from blametrail.postmortems.models import GenerationRun, Postmortem, Revision

    out: dict[int, dict] = {}
    with db.transaction(factory) as s:
        for iid in incident_ids:
            pms = list(s.scalars(select(Postmortem).where(Postmortem.incident_id == iid)))
            if not pms:
                out[iid] = {"postmortems": 0, "status": None}
                continue
            pm = pms[0]
            runs = list(s.scalars(select(GenerationRun.status).where(GenerationRun.postmortem_id == pm.id)
                                  .order_by(GenerationRun.id)))
            ai = s.scalar(select(func.count()).select_from(Revision)
                          .where(Revision.postmortem_id == pm.id, Revision.kind == "ai"))
            out[iid] = {"postmortems": len(pms), "id": pm.id, "status": pm.status, "engine": pm.engine,
                        "error": pm.error, "attempt": pm.attempt, "runs": runs, "ai_revisions": ai}
    return out


def settled(outcomes: dict[int, dict]) -> bool:
    """Tell whether no postmortem is waiting for or in a generation any more."""
    return all(o["status"] not in (None, "queued", "generating") for o in outcomes.values())
