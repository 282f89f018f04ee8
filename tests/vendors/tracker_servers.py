"""Local servers speaking the trackers' wire protocols, for the tests: GitHub's REST issues API, Linear's GraphQL API
and Jira Cloud's REST v3 — their auth headers, status codes and error shapes, with in-memory issues.

Only the calls BlameTrail makes are served, each answering the shape the vendor documents for it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server:
    """A JSON-over-HTTP server; subclasses implement handle(method, path, query, headers, body) -> (status, json)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.fail_next: list[tuple[int, dict, dict]] = []  # (status, body, headers) answered before the real thing
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                parts = urlsplit(self.path)
                server.calls.append((self.command, parts.path, body))
                if server.fail_next:
                    status, payload, headers = server.fail_next.pop(0)
                    return self._send(status, payload, headers)
                status, payload = server.handle(self.command, parts.path, parse_qs(parts.query), self.headers, body)
                return self._send(status, payload)

            do_GET = do_POST = do_PATCH = do_PUT = _any

            def _send(self, status, payload, headers=None):
                data = b"" if payload is None else json.dumps(payload).encode()
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GitHubServer(_Server):
    """GitHub REST: Bearer token; issues per repository; 404 for unknown repositories (GitHub hides them)."""

    def __init__(self, token: str = "ghp_good", repository: str = "acme/checkout") -> None:
        self.token, self.repository = token, repository
        self.issues: dict[int, dict] = {}
        super().__init__()

    def handle(self, method, path, query, headers, body):
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/issues(?:/(\d+))?)?", path)
        if not m or m.group(1) != self.repository:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        url = f"https://github.com/{self.repository}"
        if m.group(2) is None:
            return 200, {"full_name": self.repository, "has_issues": True, "html_url": url}
        number = m.group(3)
        if number is None and method == "POST":
            if not (body or {}).get("title"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}]}
            n = len(self.issues) + 1
            self.issues[n] = {"number": n, "title": body["title"], "body": body.get("body"), "state": "open",
                              "state_reason": None, "labels": [{"name": x} for x in body.get("labels", [])],
                              "html_url": f"{url}/issues/{n}",
                              "assignees": [{"login": x} for x in body.get("assignees", [])]}
            return 201, self.issues[n]
        issue = self.issues.get(int(number or 0))
        if issue is None:
            return 404, {"message": "Not Found"}
        if method == "PATCH":
            issue["state"] = body.get("state", issue["state"])
            issue["state_reason"] = body.get("state_reason") if issue["state"] == "closed" else "reopened"
        return 200, issue


class LinearServer(_Server):
    """Linear GraphQL: `Authorization: <api key>`; errors in the GraphQL `errors` array (HTTP 200 or 400)."""

    STATES = [{"id": "st-backlog", "type": "backlog", "name": "Backlog", "position": 0},
              {"id": "st-todo", "type": "unstarted", "name": "Todo", "position": 1},
              {"id": "st-doing", "type": "started", "name": "In Progress", "position": 2},
              {"id": "st-done", "type": "completed", "name": "Done", "position": 3},
              {"id": "st-canceled", "type": "canceled", "name": "Canceled", "position": 4}]

    def __init__(self, api_key: str = "lin_api_good", team_id: str = "team-1") -> None:
        self.api_key, self.team_id = api_key, team_id
        self.issues: dict[str, dict] = {}
        super().__init__()

    def _state(self, state_id: str) -> dict:
        s = next(s for s in self.STATES if s["id"] == state_id)
        return {"type": s["type"], "name": s["name"]}

    def handle(self, method, path, query, headers, body):
        if path != "/graphql" or method != "POST":
            return 404, {"errors": [{"message": "not found"}]}
        if headers.get("Authorization") != self.api_key:
            return 400, {"errors": [{"message": "Authentication required, not authenticated",
                                     "extensions": {"code": "AUTHENTICATION_ERROR", "type": "authentication error"}}]}
        q, v = body.get("query", ""), body.get("variables") or {}
        if "issueCreate" in q:
            data = v["input"]
            if data.get("teamId") != self.team_id:
                return 200, {"errors": [{"message": "Entity not found: Team", "extensions": {"code": "INVALID_INPUT"}}],
                             "data": None}
            n = len(self.issues) + 1
            issue = {"id": f"uuid-{n}", "identifier": f"ENG-{n}", "url": f"https://linear.app/acme/issue/ENG-{n}",
                     "title": data["title"], "description": data.get("description"), "priority": data.get("priority"),
                     "stateId": "st-todo", "assigneeId": data.get("assigneeId")}
            self.issues[issue["identifier"]] = issue
            return 200, {"data": {"issueCreate": {"success": True, "issue": self._out(issue)}}}
        if "issueUpdate" in q:
            issue = self.issues[v["id"]]
            issue["stateId"] = v["input"]["stateId"]
            return 200, {"data": {"issueUpdate": {"success": True, "issue": self._out(issue)}}}
        if "team(" in q and "states" in q:
            return 200, {"data": {"team": {"states": {"nodes": self.STATES}}}}
        if "issue(" in q:
            issue = self.issues.get(v["id"])
            return 200, {"data": {"issue": self._out(issue) if issue else None}}
        if "viewer" in q:
            team = {"name": "Engineering", "key": "ENG"} if v.get("id") == self.team_id else None
            return 200, {"data": {"viewer": {"name": "Dana"}, "team": team}}
        return 400, {"errors": [{"message": "Cannot query field"}]}

    def _out(self, issue: dict) -> dict:
        return {"id": issue["id"], "identifier": issue["identifier"], "url": issue["url"],
                "state": self._state(issue["stateId"])}


class JiraServer(_Server):
    """Jira Cloud REST v3: Basic e-mail:token; issues with a status and its category; transitions."""

    STATUSES = {"11": ("To Do", "new"), "21": ("In Progress", "indeterminate"), "31": ("Done", "done")}

    def __init__(self, email: str = "dana@acme.test", token: str = "jira-good", project: str = "OPS") -> None:
        self.auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.project = project
        self.issues: dict[str, dict] = {}
        super().__init__()

    def status(self, transition: str) -> dict:
        name, category = self.STATUSES[transition]
        return {"name": name, "statusCategory": {"key": category}}

    def handle(self, method, path, query, headers, body):
        if headers.get("Authorization") != self.auth:
            return 401, {"errorMessages": ["You are not authenticated. Authentication required to perform this "
                                           "operation."], "errors": {}}
        if path == "/rest/api/3/myself":
            return 200, {"accountId": "5b10a2844c20165700ede21g", "displayName": "Dana Scully"}
        if path == f"/rest/api/3/project/{self.project}":
            return 200, {"id": "10000", "key": self.project, "name": "Operations"}
        if path == "/rest/api/3/issue" and method == "POST":
            fields = body["fields"]
            if fields["project"]["key"] != self.project:
                return 400, {"errorMessages": [], "errors": {"project": "valid project is required"}}
            key = f"{self.project}-{len(self.issues) + 1}"
            self.issues[key] = {"fields": fields, "status": self.status("11"), "resolution": None}
            return 201, {"id": str(10000 + len(self.issues)), "key": key, "self": f"{self.url}/rest/api/3/issue/{key}"}
        m = re.fullmatch(r"/rest/api/3/issue/([A-Z]+-\d+)(/transitions)?", path)
        if not m or m.group(1) not in self.issues:
            return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                         "errors": {}}
        issue = self.issues[m.group(1)]
        if m.group(2) and method == "GET":
            return 200, {"transitions": [{"id": t, "name": n, "to": self.status(t)} for t, (n, _) in
                                         self.STATUSES.items()]}
        if m.group(2) and method == "POST":
            issue["status"] = self.status(body["transition"]["id"])
            return 204, None
        return 200, {"key": m.group(1), "fields": {"status": issue["status"], "resolution": issue["resolution"]}}
