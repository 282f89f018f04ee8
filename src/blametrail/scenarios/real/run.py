"""Run the real-incident evaluation: a temporary BlameTrail served over HTTP, one organization per incident, the
replays, the scores and the report.

The web app is handed in (`build_app`) because this layer sits below the web layer; the command line passes
`app.create_app`. The server is the real one: uvicorn on a loopback port, the embedded queue consumer writing
drafts with the built-in engine, a SQLite database and queue in a temporary directory unless told otherwise.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from blametrail import db
from blametrail.clock import SystemClock
from blametrail.engines.base import Engine
from blametrail.orgs import service as orgs
from blametrail.runtime import Runtime, build_runtime
from blametrail.scenarios.real.incidents import LOOKBACK, RealIncident, load_all
from blametrail.scenarios.real.replay import ReplayError, Team
from blametrail.scenarios.real.report import RealReport
from blametrail.scenarios.real.score import Outcome, failed, score
from blametrail.settings import Settings

BuildApp = Callable[[Settings, Runtime], object]
_SECRET = "blametrail-real-evaluation"


@contextlib.contextmanager
def serving(app, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port until the block ends; yield its URL."""
    import uvicorn  # why: only this command needs the server library; importing it is not free

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="real-eval-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the evaluation's BlameTrail server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def evaluation_settings(data_dir: Path, database_url: str | None = None, queue_url: str | None = None) -> Settings:
    """Return the settings the evaluation's server runs with: the built-in engine, one queue consumer, no monitors,
    the default evidence window; other settings come from the environment as for any BlameTrail."""
    return Settings(
        _env_file=None, data_dir=data_dir, database_url=database_url or f"sqlite:///{data_dir}/real.db",
        queue_url=queue_url or f"sqlite:///{data_dir}/queue.db", secret_key=_SECRET, dev_mode=True,
        ai_engine="builtin", embedded_workers=1, monitor_scheduler=False, sqlite_synchronous="NORMAL",
        # why: the data's triggers are checked against this window; the environment must not move it
        lookback_minutes=int(LOOKBACK.total_seconds() // 60), public_url="http://127.0.0.1:8000", log_level="WARNING")


def team_token(rt: Runtime, incident: RealIncident) -> str:
    """Create the organization that lives through one incident, its on-call owner and an API token; return it."""
    now = SystemClock().now()
    slug = f"real-{uuid.uuid4().hex[:10]}"
    with db.transaction(rt.factory) as session:
        org = orgs.create_org(session=session, slug=slug, name=incident.organization, plan="pro", now=now)
        member = orgs.create_user(session=session, email=f"oncall@{slug}.example", org=org, role="owner",
                                  password=None, now=now, name="On-call SRE")
        _, token = orgs.create_token(session=session, membership=member, name="incident tooling", now=now)
    return token


def replay_one(rt: Runtime, url: str, incident: RealIncident) -> Outcome:
    """Replay one incident in an organization of its own and score its draft."""
    token = team_token(rt, incident)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        try:
            return score(incident, Team(client).replay(incident))
        except (ReplayError, httpx.HTTPError) as exc:
            return failed(incident, str(exc))


def run(build_app: BuildApp, incidents: list[RealIncident] | None = None, *, database_url: str | None = None,
        queue_url: str | None = None, progress: Callable[[int, int, Outcome], None] | None = None,
        engine: Engine | None = None) -> RealReport:
    """Replay the incidents (default: all of them) against a temporary server and return the report; `engine`
    replaces the drafting engine (tests use it to show a worse draft fails the thresholds)."""
    chosen = load_all() if incidents is None else incidents
    began = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="blametrail-real-") as tmp:
        settings = evaluation_settings(Path(tmp), database_url, queue_url)
        rt = build_runtime(settings, engine_override=engine)
        try:
            with serving(build_app(settings, rt)) as url:
                for i, incident in enumerate(chosen, 1):
                    outcomes.append(replay_one(rt, url, incident))
                    if progress is not None:
                        progress(i, len(chosen), outcomes[-1])
        finally:
            rt.close()
    label = engine.label if engine is not None else settings.ai_engine
    return RealReport(outcomes=tuple(outcomes), seconds=time.perf_counter() - began, engine=label)
