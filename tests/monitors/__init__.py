"""Monitor tests, and the tiny local HTTP server they check (a real socket speaking real HTTP)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose answer (status, body, delay) tests change while it runs."""

    def __init__(self) -> None:
        self.status = 200
        self.body = "all good"
        self.delay = 0.0
        self.routes: dict[str, tuple[int, str, float]] = {}  # path → (status, body, delay), overriding the default
        self.redirects: dict[str, str] = {}  # path → Location of a 302 answer
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, with_body: bool) -> None:
                with outer._lock:
                    outer.hits[self.path] += 1
                    status, body, delay = outer.routes.get(self.path, (outer.status, outer.body, outer.delay))
                    location = outer.redirects.get(self.path)
                if location:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if delay:
                    time.sleep(delay)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if with_body:
                        self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def do_GET(self):  # noqa: N802
                self._answer(True)

            def do_POST(self):  # noqa: N802
                self._answer(True)

            def do_HEAD(self):  # noqa: N802
                self._answer(False)

            def log_message(self, *args):
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/health") -> str:
        """Return the URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_port() -> int:
    """Return a local port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_payload(**overrides) -> dict:
    """Return a valid MonitorCreate body, with some fields replaced."""
    return {"name": "checkout", "url": "https://shop.example.test/health", "service": "checkout", **overrides}
