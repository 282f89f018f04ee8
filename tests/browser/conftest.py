"""A live server and Debian's Chromium for the browser tests.

The app runs in uvicorn on a free 127.0.0.1 port in a background thread, with the embedded queue consumer
(a real SQLite huey file, one worker thread), so postmortems are drafted in the background exactly as in
`blametrail serve`. The clock is a FrozenClock shared with the runtime: the tests move time forward where a
rule depends on it (the regenerate interval) instead of sleeping. The drafting engine is the built-in one
behind a gate, so a test can watch the card in its Queued/Generating state and then release the worker.

Playwright ships only its driver: the browser is Debian's /usr/bin/chromium (scripts/test-setup.sh installs
it). Without it these tests skip, unless CI is set, where a missing browser fails the run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blametrail.clock import FrozenClock
from blametrail.engines.builtin import BuiltinEngine
from blametrail.settings import Settings

CHROMIUM = os.environ.get("BLAMETRAIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "correct-horse-battery"


def _browser_or_skip() -> None:
    reason = None
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} is missing: run scripts/test-setup.sh (installs Debian's chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing: pip install -e '.[test]'"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)


class GatedEngine(BuiltinEngine):
    """The built-in engine, held at a gate until a test opens it (then it drafts at once)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()

    def draft(self, pack, context=None):
        self.entered.set()
        self.gate.wait(timeout=30)
        return super().draft(pack, context)


@dataclass
class Live:
    url: str
    rt: object
    clock: FrozenClock
    engine: GatedEngine
    state: dict = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Serve the app on 127.0.0.1 with the embedded queue consumer; yield its URL and runtime."""
    _browser_or_skip()
    import uvicorn

    from blametrail.app import create_app
    from blametrail.runtime import build_runtime

    data = tmp_path_factory.mktemp("live")
    settings = Settings(data_dir=data, database_url=f"sqlite:///{data / 'blametrail.db'}",
                        queue_url=f"sqlite:///{data / 'queue.db'}", dev_mode=True, embedded_workers=1,
                        monitor_scheduler=False, _env_file=None)
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    engine = GatedEngine()
    rt = build_runtime(settings, clock=clock, migrate=True, engine_override=engine)
    app = create_app(settings, runtime=rt, background=True)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="live-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    try:
        yield Live(url=f"http://127.0.0.1:{port}", rt=rt, clock=clock, engine=engine)
    finally:
        engine.gate.set()  # never leave a worker waiting at the gate
        server.should_exit = True
        thread.join(timeout=30)
        rt.close()


@pytest.fixture(scope="module")
def chromium(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(live, chromium):
    """Open a page in a fresh browser context (its own cookies), logged in as `email` when given."""
    contexts = []

    def _open(email: str | None = None, *, width: int = 1280, height: int = 900):
        ctx = chromium.new_context(base_url=live.url, viewport={"width": width, "height": height})
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        if email:
            login(page, email)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


def login(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/incidents")
