"""Notion: publish a published postmortem as a page under a parent page (pages and blocks API), and replace its
content on republish. Calls go through `notion-client` (the maintained Python SDK), given an httpx client from the
outbound guard so every connection is vetted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy, blocked_in, client
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor
from blametrail.vendors.document import Block

DEFAULT_BASE_URL = "https://api.notion.com"
MAX_TEXT = 2_000  # Notion's limit per rich-text object
MAX_CHILDREN = 100  # blocks per append request

ERRORS = {
    "unauthorized": "Notion rejected the integration token (unauthorized): copy the internal integration secret again.",
    "restricted_resource": "The integration may not use that page (restricted_resource).",
    "object_not_found": "Notion cannot find the parent page (object_not_found): share it with the integration "
                        "(⋯ → Connections) and check its id.",
    "rate_limited": "Notion is rate limiting these calls (rate_limited).",
    "validation_error": "Notion refused the page's content (validation_error).",
}


def _sdk(config: dict, policy: OutboundPolicy, timeout: float):
    from notion_client import Client

    base = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    policy.check_url(base)
    return Client(client=client(policy), auth=config.get("token"), base_url=base, timeout_ms=int(timeout * 1000),
                  retry=False)


def _explain(exc: BaseException, where: str) -> str:
    from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

    if isinstance(exc, APIResponseError):
        code = str(getattr(exc.code, "value", exc.code))
        if exc.status == 429:
            return f"Notion is rate limiting these calls (HTTP 429): it asks to wait {exc.headers.get('Retry-After', '?')} s."
        return ERRORS.get(code, f"Notion refused the call ({code}).")
    if isinstance(exc, HTTPResponseError):
        return f"Notion answered HTTP {exc.status}."
    if isinstance(exc, RequestTimeoutError):
        return f"Notion at {where} did not answer in time."
    blocked = blocked_in(exc)
    if blocked is not None:
        return str(blocked)
    return f"Could not reach Notion at {where}: {exc.__class__.__name__}."


def _text(value: str) -> list[dict]:
    value = value or ""
    return [{"type": "text", "text": {"content": value[i:i + MAX_TEXT]}} for i in range(0, len(value), MAX_TEXT)] or []


def blocks_of(blocks: list[Block]) -> list[dict]:
    """Notion blocks for the document."""
    out: list[dict] = []
    for b in blocks:
        if b.kind == "heading":
            out.append({"object": "block", "type": "heading_2", "heading_2": {"rich_text": _text(b.text)}})
        elif b.kind == "paragraph":
            out.append({"object": "block", "type": "paragraph", "paragraph": {"rich_text": _text(b.text)}})
        elif b.kind == "link":
            out.append({"object": "block", "type": "paragraph", "paragraph": {"rich_text": [
                {"type": "text", "text": {"content": b.text, "link": {"url": b.url}}}]}})
        elif b.kind == "bullets":
            out += [{"object": "block", "type": "bulleted_list_item", "bulleted_list_item": {"rich_text": _text(i)}}
                    for i in b.items]
        elif b.kind == "table":
            width = len(b.items[0])
            rows = [{"object": "block", "type": "table_row",
                     "table_row": {"cells": [_text(str(c)) for c in row]}} for row in b.items]
            out.append({"object": "block", "type": "table", "table": {
                "table_width": width, "has_column_header": True, "has_row_header": False, "children": rows}})
    return out


def publish(config: dict, policy: OutboundPolicy, timeout: float, *, title: str, blocks: list[Block],
            page_id: str | None) -> dict:
    """Create the page under the parent, or replace the content of the one made before; return {id, url}."""
    where = urlsplit(config.get("base_url") or DEFAULT_BASE_URL).netloc
    sdk = _sdk(config, policy, timeout)
    children = blocks_of(blocks)
    title_prop = {"title": {"title": _text(title)}}
    try:
        if page_id:
            page = sdk.pages.update(page_id=page_id, properties=title_prop)
            cursor = None
            old: list[str] = []
            while True:
                listed = sdk.blocks.children.list(block_id=page_id, start_cursor=cursor) if cursor else \
                    sdk.blocks.children.list(block_id=page_id)
                old += [c["id"] for c in listed.get("results", [])]
                if not listed.get("has_more"):
                    break
                cursor = listed.get("next_cursor")
            for block_id in old:
                sdk.blocks.delete(block_id=block_id)
            for i in range(0, len(children), MAX_CHILDREN):
                sdk.blocks.children.append(block_id=page_id, children=children[i:i + MAX_CHILDREN])
        else:
            page = sdk.pages.create(parent={"page_id": config.get("parent_page_id")}, properties=title_prop,
                                    children=children[:MAX_CHILDREN])
            for i in range(MAX_CHILDREN, len(children), MAX_CHILDREN):
                sdk.blocks.children.append(block_id=page["id"], children=children[i:i + MAX_CHILDREN])
    except Exception as exc:  # why: the SDK raises its own errors and httpx's; each becomes plain words
        raise UpstreamError(_explain(exc, where)) from exc
    finally:
        sdk.close()
    return {"id": page["id"], "url": page.get("url") or f"https://www.notion.so/{page['id'].replace('-', '')}"}


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    where = urlsplit(config.get("base_url") or DEFAULT_BASE_URL).netloc
    watch = Stopwatch()
    sdk = _sdk(config, policy, timeout)
    try:
        page = sdk.pages.retrieve(page_id=config.get("parent_page_id"))
    except Exception as exc:  # why: as in publish
        return TestResult(ok=False, latency_ms=watch.ms, detail=_explain(exc, where))
    finally:
        sdk.close()
    titles = [t.get("plain_text", "") for prop in (page.get("properties") or {}).values()
              if prop.get("type") == "title" for t in prop.get("title", [])]
    name = "".join(titles) or page.get("id")
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Connected: pages go under “{name}”.")


VENDOR = Vendor(
    kind="notion", label="Notion",
    settings=(
        Setting("token", "Internal integration secret", secret=True, hint="notion.so/my-integrations → Secrets"),
        Setting("parent_page_id", "Parent page id", max_length=64,
                hint="The 32-character id at the end of the page's link; share the page with the integration"),
        BASE_URL,
    ),
    default_base_url=DEFAULT_BASE_URL, test=test, docs="notion",
)
