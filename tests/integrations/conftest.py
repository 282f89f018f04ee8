"""Helpers for connector tests: free ports, a server that never answers in time, connector configs."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from blametrail.integrations.common import ConnectorConfig, Limits


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(provider: str, endpoint: str, *, name: str = "test-conn", credentials: dict | None = None,
                options: dict | None = None, timeout: float = 5.0, kinds=("metric",), **limits) -> ConnectorConfig:
    """Build a connector configuration as connector_for would."""
    return ConnectorConfig(name=name, provider=provider, endpoint=endpoint, credentials=credentials or {},
                           options=options or {}, limits=Limits(timeout_seconds=timeout, **limits),
                           kinds=frozenset(kinds))


@pytest.fixture
def slow_server():
    """An HTTP server that holds every request far longer than the connectors' test timeouts."""
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            release.wait(10)
            try:
                self.send_response(200)
                self.end_headers()
            except OSError:
                pass

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()
