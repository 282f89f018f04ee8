"""Confluence Cloud: publish a published postmortem as a page (REST API v2, storage format), update it on republish.

Hand-written on httpx rather than an SDK: Atlassian's Python libraries are built on `requests`, which the outbound
guard (netguard, an httpx transport that connects only to vetted addresses) cannot sit under; the four calls used
here (find the space, create, read and update a page) are small and documented.
"""

from __future__ import annotations

import base64
from html import escape
from urllib.parse import urlsplit

import httpx

from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy, blocked_in, client
from blametrail.vendors.base import Setting, Stopwatch, TestResult, Vendor
from blametrail.vendors.document import Block

ERRORS = {
    401: "Confluence rejected the e-mail and API token (HTTP 401): create a new API token at "
         "id.atlassian.com → Security → API tokens.",
    403: "The account cannot write in that space (HTTP 403): give it permission to add pages.",
    404: "Confluence has no such space or page (HTTP 404): check the space key.",
}


def _base(config: dict) -> str:
    site = config.get("site_url", "").rstrip("/")
    return site if site.endswith("/wiki") else site + "/wiki"


def _headers(config: dict) -> dict:
    raw = f"{config.get('email', '')}:{config.get('api_token', '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode(), "Accept": "application/json"}


def _explain(exc: BaseException, where: str) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429:
            return (f"Confluence is rate limiting these calls (HTTP 429): it asks to wait "
                    f"{exc.response.headers.get('Retry-After', '?')} s.")
        return ERRORS.get(status, f"Confluence answered HTTP {status}.")
    blocked = blocked_in(exc)
    if blocked is not None:
        return str(blocked)
    if isinstance(exc, httpx.TimeoutException):
        return f"Confluence at {where} did not answer in time."
    return f"Could not reach Confluence at {where}: {exc.__class__.__name__}."


class ConfluenceClient:
    def __init__(self, config: dict, policy: OutboundPolicy, timeout: float) -> None:
        self.config = config
        self.base = _base(config)
        self.where = urlsplit(self.base).netloc
        self.http = client(policy, timeout=timeout, headers=_headers(config))

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.http.request(method, self.base + path, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamError(_explain(exc, self.where)) from exc

    def space_id(self) -> tuple[str, str]:
        key = self.config.get("space_key", "")
        found = self._call("GET", "/api/v2/spaces", params={"keys": key, "limit": 1}).get("results") or []
        if not found:
            raise UpstreamError(f"Confluence has no space with the key {key!r}: check the space key.")
        return str(found[0]["id"]), found[0].get("name") or key

    def _url(self, page: dict) -> str:
        links = page.get("_links") or {}
        return (links.get("base") or self.base) + (links.get("webui") or f"/pages/{page['id']}")

    def publish(self, title: str, blocks: list[Block], page_id: str | None) -> dict:
        """Create the page, or update the one made before (its next version); return {id, url, version}."""
        body = {"representation": "storage", "value": storage(blocks)}
        if page_id:
            current = self._call("GET", f"/api/v2/pages/{page_id}")
            number = int((current.get("version") or {}).get("number") or 1) + 1
            page = self._call("PUT", f"/api/v2/pages/{page_id}", json={
                "id": page_id, "status": "current", "title": title, "body": body,
                "version": {"number": number, "message": "Republished in BlameTrail"}})
        else:
            space, _ = self.space_id()
            page = self._call("POST", "/api/v2/pages", json={"spaceId": space, "status": "current", "title": title,
                                                             "body": body})
        return {"id": str(page["id"]), "url": self._url(page), "version": (page.get("version") or {}).get("number")}


def storage(blocks: list[Block]) -> str:
    """Confluence storage format (XHTML) for the blocks."""
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append(f"<h2>{escape(b.text)}</h2>")
        elif b.kind == "paragraph":
            out.append(f"<p>{escape(b.text)}</p>")
        elif b.kind == "link":
            out.append(f'<p><a href="{escape(b.url)}">{escape(b.text)}</a></p>')
        elif b.kind == "bullets":
            out.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head, *rows = b.items
            out.append("<table><tbody><tr>" + "".join(f"<th>{escape(str(c))}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                       + "</tbody></table>")
    return "".join(out)


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    watch = Stopwatch()
    api = ConfluenceClient(config, policy, timeout)
    try:
        _, name = api.space_id()
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    finally:
        api.close()
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Connected: pages go to the {name} space.")


VENDOR = Vendor(
    kind="confluence", label="Confluence",
    settings=(
        Setting("site_url", "Site URL", url=True, max_length=2000, hint="https://your-team.atlassian.net"),
        Setting("email", "Account e-mail", max_length=320),
        Setting("api_token", "API token", secret=True, hint="id.atlassian.com → Security → API tokens"),
        Setting("space_key", "Space key", max_length=255, hint="e.g. ENG (Space settings → Space details)"),
    ),
    test=test, docs="confluence",
)
