"""A local Slack Web API server for the tests: Slack's wire shapes (HTTP 200 with {"ok": false, "error"} for refused
calls, 429 with Retry-After when rate limiting), bearer-token auth, form or JSON bodies, cursor pagination.

Only the methods the tests use are served; each returns what Slack's documentation shows for it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class SlackServer:
    def __init__(self, token: str = "xoxb-good-token") -> None:
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        self.rate_limit_next = 0  # answer this many calls with 429 first
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                method = self.path.rsplit("/", 1)[-1].split("?", 1)[0]
                server.calls.append((method, params))
                if server.delay:
                    time.sleep(server.delay)
                if server.rate_limit_next > 0:
                    server.rate_limit_next -= 1
                    return self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
                auth = self.headers.get("Authorization") or ""
                if auth != f"Bearer {server.token}":
                    return self._send(200, {"ok": False, "error": "invalid_auth" if auth else "not_authed"})
                handler = getattr(server, "m_" + method.replace(".", "_"), None)
                if handler is None:
                    return self._send(200, {"ok": False, "error": "unknown_method"})
                return self._send(200, handler(params))

            def _send(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- methods (https://api.slack.com/methods) -------------------------------------------------------------
    def m_auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "blametrail",
                "team_id": "T0ACME", "user_id": "U0BOT", "bot_id": "B0BOT", "is_enterprise_install": False}
