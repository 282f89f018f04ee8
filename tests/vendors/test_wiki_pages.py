"""A published postmortem becomes a Confluence page and a Notion page (tables for the timeline and action items),
republishing updates the same page, and every failure is reported in plain words. The real clients (httpx for
Confluence, notion-client for Notion) talk to local servers that speak each vendor's wire protocol."""

from __future__ import annotations

import pytest

from tests.vendors.wiki_servers import ConfluenceServer, NotionServer
from tests.web.test_pages import drafted_incident, team  # noqa: F401 (fixtures)


@pytest.fixture
def confluence():
    server = ConfluenceServer()
    yield server
    server.close()


@pytest.fixture
def notion():
    server = NotionServer()
    yield server
    server.close()


def _published(client, rt, clock, owner, summary="Checkout failed [upd_1]. Fixed by a rollback.") -> int:
    iid = drafted_incident(rt, clock, owner)
    url = f"/api/v1/incidents/{iid}/postmortem"
    version = client.get(url, headers=owner.headers).json()["version"]
    assert client.patch(url, headers=owner.headers,
                        json={"version": version, "sections": {"summary": summary}}).status_code == 200
    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200
    return iid


def _republish(client, owner, iid, summary):
    url = f"/api/v1/incidents/{iid}/postmortem"
    version = client.get(url, headers=owner.headers).json()["version"]
    assert client.patch(url, headers=owner.headers,
                        json={"version": version, "sections": {"summary": summary}}).status_code == 200
    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200


def test_a_published_postmortem_appears_as_a_confluence_page_and_republish_updates_it(client, rt, clock, team,
                                                                                      confluence):
    t = team()
    owner = t["owner"]
    settings = {"site_url": confluence.root, "email": "bot@acme.io", "api_token": "atl-good", "space_key": "ENG"}
    assert client.put("/api/v1/integrations/confluence", headers=owner.headers, json=settings).status_code == 200
    tested = client.post("/api/v1/integrations/confluence/test", headers=owner.headers).json()
    assert tested == {"ok": True, "latency_ms": tested["latency_ms"], "detail": "Connected: pages go to the "
                                                                                "Engineering space."}
    iid = _published(client, rt, clock, owner)
    url = f"/api/v1/incidents/{iid}/postmortem/pages"
    assert client.post(url, headers=t["member"].headers, json={"target": "confluence"}).status_code == 403
    made = client.post(url, headers=owner.headers, json={"target": "confluence"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["target"] == "confluence" and body["version"] == 1 and body["url"].startswith(confluence.root + "/wiki")
    page = confluence.pages[body["page_id"]]
    storage = page["body"]["value"]
    assert page["title"] == f"Postmortem: #{iid} Checkout errors"
    assert "<th>Time (UTC)</th>" in storage and "<th>Action item</th>" in storage  # real tables
    assert "Checkout failed. Fixed by a rollback." in storage and "upd_1" not in storage
    assert f"/incidents/{iid}/postmortem" in storage  # a link back to every citation

    _republish(client, owner, iid, "Checkout failed; the fix was a rollback.")
    again = client.post(url, headers=owner.headers, json={"target": "confluence"})
    assert again.status_code == 200 and again.json()["page_id"] == body["page_id"]  # the same page, updated
    assert page["version"]["number"] == 2 and "the fix was a rollback" in page["body"]["value"]
    assert len(confluence.pages) == 1


def test_confluence_failures_in_plain_words(client, rt, clock, team, confluence):
    owner = team()["owner"]
    base = {"site_url": confluence.root, "email": "bot@acme.io", "api_token": "atl-good", "space_key": "ENG"}
    cases = [({"api_token": "wrong"}, "rejected the e-mail and API token (HTTP 401)"),
             ({"space_key": "OPS"}, "no space with the key 'OPS'")]
    for change, words in cases:
        client.put("/api/v1/integrations/confluence", headers=owner.headers, json={**base, **change})
        r = client.post("/api/v1/integrations/confluence/test", headers=owner.headers).json()
        assert not r["ok"] and words in r["detail"], r
    client.put("/api/v1/integrations/confluence", headers=owner.headers, json=base)
    iid = _published(client, rt, clock, owner)
    confluence.rate_limit_next = 1
    r = client.post(f"/api/v1/incidents/{iid}/postmortem/pages", headers=owner.headers, json={"target": "confluence"})
    assert r.status_code == 502 and "HTTP 429" in r.json()["detail"] and "7 s" in r.json()["detail"]
    status = client.get("/api/v1/integrations/confluence", headers=owner.headers).json()
    assert status["status"] == "error" and "429" in status["last_error"]


def test_a_published_postmortem_appears_as_a_notion_page_and_republish_replaces_its_content(client, rt, clock, team,
                                                                                           notion):
    owner = team()["owner"]
    settings = {"token": "secret_good", "parent_page_id": notion.parent_id, "base_url": notion.root}
    assert client.put("/api/v1/integrations/notion", headers=owner.headers, json=settings).status_code == 200
    tested = client.post("/api/v1/integrations/notion/test", headers=owner.headers).json()
    assert tested["ok"] and tested["detail"] == "Connected: pages go under “Postmortems”."
    iid = _published(client, rt, clock, owner)
    url = f"/api/v1/incidents/{iid}/postmortem/pages"
    made = client.post(url, headers=owner.headers, json={"target": "notion"})
    assert made.status_code == 201, made.text
    page_id = made.json()["page_id"]
    blocks = notion.live_blocks(page_id)
    kinds = [b["type"] for b in blocks]
    assert kinds.count("table") >= 1 and "heading_2" in kinds
    timeline = next(b for b in blocks if b["type"] == "table")
    assert timeline["table"]["has_column_header"] and timeline["table"]["children"][0]["table_row"]["cells"][0][0][
        "text"]["content"] == "Time (UTC)"
    first_count = len(blocks)

    _republish(client, owner, iid, "A different summary now.")
    again = client.post(url, headers=owner.headers, json={"target": "notion"})
    assert again.status_code == 200 and again.json()["page_id"] == page_id
    blocks = notion.live_blocks(page_id)
    assert len(blocks) == first_count  # old content archived (read across several pages of children), new added
    texts = [rt_["text"]["content"] for b in blocks if b["type"] == "paragraph" for rt_ in b["paragraph"]["rich_text"]]
    assert "A different summary now." in texts and "Checkout failed. Fixed by a rollback." not in texts
    assert notion.pages[page_id]["properties"]["title"]["title"][0]["text"]["content"].startswith("Postmortem: #")


def test_notion_failures_in_plain_words(client, rt, clock, team, notion):
    owner = team()["owner"]
    base = {"token": "secret_good", "parent_page_id": notion.parent_id, "base_url": notion.root}
    for change, words in (({"token": "secret_bad"}, "rejected the integration token (unauthorized)"),
                          ({"parent_page_id": "0" * 32}, "share it with the integration")):
        client.put("/api/v1/integrations/notion", headers=owner.headers, json={**base, **change})
        r = client.post("/api/v1/integrations/notion/test", headers=owner.headers).json()
        assert not r["ok"] and words in r["detail"], r
    client.put("/api/v1/integrations/notion", headers=owner.headers, json=base)
    notion.rate_limit_next = 1
    r = client.post("/api/v1/integrations/notion/test", headers=owner.headers).json()
    assert not r["ok"] and "HTTP 429" in r["detail"] and "3 s" in r["detail"]


def test_nothing_leaves_before_publishing_and_unknown_targets_are_refused(client, rt, clock, team, notion):
    t = team()
    owner = t["owner"]
    iid = drafted_incident(rt, clock, owner)
    url = f"/api/v1/incidents/{iid}/postmortem/pages"
    assert client.post(url, headers=owner.headers, json={"target": "sharepoint"}).status_code == 422
    assert client.post(url, headers=owner.headers, json={"target": "notion"}).status_code == 404  # not published
    iid = _published(client, rt, clock, owner)
    r = client.post(f"/api/v1/incidents/{iid}/postmortem/pages", headers=owner.headers, json={"target": "notion"})
    assert r.status_code == 404 and "not set up" in r.json()["detail"]
    other = team()["owner"]
    assert client.post(f"/api/v1/incidents/{iid}/postmortem/pages", headers=other.headers,
                       json={"target": "notion"}).status_code == 404
