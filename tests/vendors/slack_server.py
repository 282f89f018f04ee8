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
        self.retry_after = "30"  # what those 429s ask for (seconds)
        self.delay = 0.0
        self.page_size: int | None = None  # force small pages (else the caller's limit, as Slack does)
        self.channels: dict[str, list[dict]] = {}  # channel → messages, each Slack's message shape
        self.users: dict[str, dict] = {}  # user id → Slack's user object
        self.posted: list[dict] = []  # chat.postMessage calls
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
                    return self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": server.retry_after})
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

    # --- conversations, users and messages, with Slack's cursor pagination ------------------------------------
    def message(self, channel: str, ts: str, text: str, user: str | None = "U0DANA", **extra) -> dict:
        """Add a message to a channel as Slack stores it; replies carry thread_ts of their parent."""
        msg = {"type": "message", "ts": ts, "text": text, **({"user": user} if user else {}), **extra}
        self.channels.setdefault(channel, []).append(msg)
        if extra.get("thread_ts") and extra["thread_ts"] != ts:
            parent = next(m for m in self.channels[channel] if m["ts"] == extra["thread_ts"])
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
        return msg

    def _page(self, items: list[dict], params: dict) -> dict:
        size = self.page_size or int(params.get("limit") or 100)
        start = int(params["cursor"]) if params.get("cursor") else 0
        chunk = items[start:start + size]
        more = start + size < len(items)
        return {"ok": True, "messages": chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def _channel(self, params: dict) -> list[dict] | None:
        return self.channels.get(params.get("channel") or "")

    def m_conversations_history(self, params: dict) -> dict:
        msgs = self._channel(params)
        if msgs is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        top = [m for m in msgs if float(m["ts"]) >= oldest and m.get("thread_ts") in (None, m["ts"])]
        return self._page(sorted(top, key=lambda m: -float(m["ts"])), params)  # newest first, as Slack answers

    def m_conversations_replies(self, params: dict) -> dict:
        msgs = self._channel(params)
        if msgs is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = params.get("ts")
        thread = [m for m in msgs if m["ts"] == parent or m.get("thread_ts") == parent]
        return self._page(sorted(thread, key=lambda m: float(m["ts"])), params)  # parent first, then oldest first

    def m_users_info(self, params: dict) -> dict:
        user = self.users.get(params.get("user") or "")
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def m_chat_postMessage(self, params: dict) -> dict:
        if params.get("channel") not in self.channels and not str(params.get("channel") or "").startswith("C"):
            return {"ok": False, "error": "channel_not_found"}
        self.posted.append(params)
        return {"ok": True, "channel": params.get("channel"), "ts": f"{1700000000 + len(self.posted)}.000100",
                "message": {"text": params.get("text")}}
