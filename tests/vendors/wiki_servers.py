"""Local wire-protocol servers for the wikis: Confluence Cloud REST v2 (pages in the storage format) and Notion's
pages and blocks API. Each checks auth the vendor's way, answers errors in the vendor's error shape, paginates like
the vendor, and can be told to rate limit (429 + Retry-After) or to be slow."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree


class _Server:
    def __init__(self) -> None:
        self.rate_limit_next = 0
        self.delay = 0.0
        self.calls: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                server.calls.append((self.command, parts.path))
                if server.delay:
                    time.sleep(server.delay)
                if server.rate_limit_next > 0:
                    server.rate_limit_next -= 1
                    return self.reply(*server.rate_limited())
                body = json.loads(raw) if raw else None
                status, payload = server.route(self.command, parts.path, parse_qs(parts.query), body, self.headers)
                return self.reply(status, payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def reply(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConfluenceServer(_Server):
    """Confluence Cloud: Basic auth with e-mail and API token; /wiki/api/v2/spaces and /wiki/api/v2/pages."""

    def __init__(self, email: str = "bot@acme.io", token: str = "atl-good", space_key: str = "ENG") -> None:
        self.auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.spaces = {space_key: {"id": "98304", "key": space_key, "name": "Engineering"}}
        self.pages: dict[str, dict] = {}
        self._ids = itertools.count(65_537)
        super().__init__()

    def rate_limited(self):
        return 429, {"errors": [{"status": 429, "code": "TOO_MANY_REQUESTS", "title": "Rate limited"}]}, \
            {"Retry-After": "7"}

    def _error(self, status: int, code: str, title: str):
        return status, {"errors": [{"status": status, "code": code, "title": title, "detail": None}]}

    def _page_out(self, page: dict) -> dict:
        return {**page, "_links": {"webui": f"/spaces/{page['spaceKey']}/pages/{page['id']}",
                                   "base": f"{self.root}/wiki"}}

    def route(self, method, path, query, body, headers):
        if headers.get("Authorization") != self.auth:
            return 401, {"code": 401, "message": "Client must be authenticated to access this resource."}
        if method == "GET" and path == "/wiki/api/v2/spaces":
            keys = (query.get("keys") or [""])[0].split(",")
            return 200, {"results": [self.spaces[k] for k in keys if k in self.spaces], "_links": {}}
        if method == "POST" and path == "/wiki/api/v2/pages":
            space = next((s for s in self.spaces.values() if s["id"] == body.get("spaceId")), None)
            if space is None:
                return self._error(404, "NOT_FOUND", "Space not found")
            if body.get("body", {}).get("representation") != "storage":
                return self._error(400, "INVALID_REQUEST_PARAMETER", "representation must be storage")
            ElementTree.fromstring("<root>" + body["body"]["value"] + "</root>")  # must be well-formed XHTML
            if any(p["title"] == body["title"] and p["spaceId"] == space["id"] for p in self.pages.values()):
                return self._error(400, "BAD_REQUEST", "A page with this title already exists")
            page = {"id": str(next(self._ids)), "status": body.get("status", "current"), "title": body["title"],
                    "spaceId": space["id"], "spaceKey": space["key"], "body": body["body"],
                    "version": {"number": 1}}
            self.pages[page["id"]] = page
            return 200, self._page_out(page)
        if path.startswith("/wiki/api/v2/pages/"):
            page = self.pages.get(path.rsplit("/", 1)[1])
            if page is None:
                return self._error(404, "NOT_FOUND", "Page not found")
            if method == "GET":
                return 200, self._page_out(page)
            if method == "PUT":
                if (body.get("version") or {}).get("number") != page["version"]["number"] + 1:
                    return self._error(409, "CONFLICT", "Version must be incremented when updating a page")
                ElementTree.fromstring("<root>" + body["body"]["value"] + "</root>")
                page.update(title=body["title"], body=body["body"], version={"number": body["version"]["number"]})
                return 200, self._page_out(page)
        return self._error(404, "NOT_FOUND", "No such endpoint")


class NotionServer(_Server):
    """Notion: Bearer token and a Notion-Version header; pages and block children with cursor pagination."""

    def __init__(self, token: str = "secret_good", page_size: int = 3) -> None:
        self.token = token
        self.page_size = page_size
        self.parent_id = str(uuid.UUID(int=7))
        self.pages: dict[str, dict] = {self.parent_id: {"id": self.parent_id, "object": "page", "properties": {
            "title": {"type": "title", "title": [{"plain_text": "Postmortems"}]}}}}
        self.children: dict[str, list[dict]] = {}
        super().__init__()

    def rate_limited(self):
        return 429, {"object": "error", "status": 429, "code": "rate_limited",
                     "message": "You have been rate limited. Please try again in a few minutes."}, {"Retry-After": "3"}

    def _error(self, status: int, code: str, message: str):
        return status, {"object": "error", "status": status, "code": code, "message": message}

    def _add_children(self, parent: str, blocks: list[dict]):
        if len(blocks) > 100:
            return self._error(400, "validation_error", "body.children.length should be ≤ `100`")
        for b in blocks:
            block = {**b, "id": str(uuid.uuid4()), "archived": False}
            self.children.setdefault(parent, []).append(block)
        return None

    def route(self, method, path, query, body, headers):
        if headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "unauthorized", "API token is invalid.")
        if not headers.get("Notion-Version"):
            return self._error(400, "missing_version", "Notion-Version header failed validation")
        if method == "POST" and path == "/v1/pages":
            parent = (body.get("parent") or {}).get("page_id")
            if parent not in self.pages:
                return self._error(404, "object_not_found", f"Could not find page with ID: {parent}.")
            page_id = str(uuid.uuid4())
            page = {"object": "page", "id": page_id, "parent": {"page_id": parent}, "properties": body["properties"],
                    "url": f"https://www.notion.so/{page_id.replace('-', '')}"}
            self.pages[page_id] = page
            failed = self._add_children(page_id, body.get("children") or [])
            return failed or (200, page)
        if path.startswith("/v1/pages/"):
            page = self.pages.get(path.rsplit("/", 1)[1])
            if page is None:
                return self._error(404, "object_not_found", "Could not find page.")
            if method == "PATCH":
                page["properties"] = body.get("properties", page["properties"])
            return 200, page
        if path.startswith("/v1/blocks/") and path.endswith("/children"):
            block_id = path.split("/")[3]
            if method == "PATCH":
                failed = self._add_children(block_id, body.get("children") or [])
                return failed or (200, {"object": "list", "results": self.children[block_id][-len(body["children"]):]})
            live = [b for b in self.children.get(block_id, []) if not b["archived"]]
            start = int((query.get("start_cursor") or ["0"])[0])
            chunk = live[start:start + self.page_size]
            more = start + self.page_size < len(live)
            return 200, {"object": "list", "results": chunk, "has_more": more,
                         "next_cursor": str(start + self.page_size) if more else None}
        if method == "DELETE" and path.startswith("/v1/blocks/"):
            block_id = path.rsplit("/", 1)[1]
            for blocks in self.children.values():
                for b in blocks:
                    if b["id"] == block_id:
                        b["archived"] = True
                        return 200, b
            return self._error(404, "object_not_found", "Could not find block.")
        return self._error(400, "invalid_request_url", "Invalid request URL.")

    def live_blocks(self, page_id: str) -> list[dict]:
        return [b for b in self.children.get(page_id, []) if not b["archived"]]
