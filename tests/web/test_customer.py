"""The customer-facing version through the API, the pages and the public address: made only from a published
version, redacted with a reviewable list, edited by members, made public by owners/admins only while the
organization allows it, and never shown for another organization or after withdrawal."""

from __future__ import annotations

from sqlalchemy import update

from blametrail import db
from blametrail.orgs.models import Organization
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    post,
    soup,
    team,
)

API = "/api/v1"


def allow_public(rt, org_id: int, allowed: bool = True) -> None:
    with db.transaction(rt.factory) as s:
        s.execute(update(Organization).where(Organization.id == org_id).values(public_postmortems=allowed))


def published_incident(client, rt, clock, owner) -> int:
    iid = drafted_incident(rt, clock, owner)
    url = f"{API}/incidents/{iid}/postmortem"
    version = client.get(url, headers=owner.headers).json()["version"]
    r = client.patch(url, headers=owner.headers, json={"version": version, "sections": {
        "summary": "Checkout v2.3.1 on db-01.prod.internal failed for Dana Owner [upd_1]. Orders were lost.",
        "root_cause": "A missing index (commit a1b2c3d) made queries slow."}})
    assert r.status_code == 200, r.text
    assert client.post(f"{url}/publish", headers=owner.headers).status_code == 200
    return iid


def test_made_from_the_published_version_redacted_and_published_by_owners_only(client, rt, clock, team):
    t = team()
    owner, admin, member, viewer = t["owner"], t["admin"], t["member"], t["viewer"]
    iid = published_incident(client, rt, clock, owner)
    url = f"{API}/incidents/{iid}/postmortem/customer"
    assert client.get(url, headers=viewer.headers).status_code == 404
    assert client.post(url, headers=viewer.headers).status_code == 403
    made = client.post(url, headers=member.headers)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "draft" and body["source_version"] == 1 and body["public_url"] is None
    text = " ".join(body["content"].values())
    for internal in ("db-01.prod.internal", "a1b2c3d", "upd_1", "v2.3.1", "checkout"):
        assert internal not in text, internal
    assert {"text": "db-01.prod.internal", "reason": "host name"} in body["removed"]

    edited = client.patch(url, headers=member.headers, json={"impact": "Some orders failed for 15 minutes."})
    assert edited.status_code == 200 and edited.json()["content"]["impact"] == "Some orders failed for 15 minutes."
    assert client.patch(url, headers=member.headers, json={"colour": "red"}).status_code == 422
    assert client.patch(url, headers=member.headers, json={"impact": "x" * 10_001}).status_code == 422
    assert client.patch(url, headers=viewer.headers, json={"impact": "no"}).status_code == 403

    assert client.post(f"{url}/publish", headers=member.headers).status_code == 403
    refused = client.post(f"{url}/publish", headers=admin.headers)  # the organization has not allowed it yet
    assert refused.status_code == 409 and "turned off" in refused.json()["detail"]
    allow_public(rt, owner.actor.org_id)
    public = client.post(f"{url}/publish", headers=admin.headers).json()
    assert public["status"] == "public" and "/public/postmortems/" in public["public_url"]

    anonymous = client.get("/public/postmortems/" + public["public_url"].rsplit("/", 1)[1],
                           headers={"accept": "text/html"})
    assert anonymous.status_code == 200 and anonymous.headers["x-robots-tag"] == "noindex"
    page = soup(anonymous)
    assert "Some orders failed for 15 minutes." in page.get_text()
    assert page.select_one("header.site-header") is None  # nothing of the organization's app around it
    assert "db-01" not in anonymous.text

    allow_public(rt, owner.actor.org_id, False)  # the owner turns public postmortems off: the address goes dark
    assert client.get(public["public_url"].split("testserver", 1)[1]).status_code == 404
    allow_public(rt, owner.actor.org_id, True)
    assert client.post(f"{url}/withdraw", headers=owner.headers).json()["status"] == "withdrawn"
    assert client.get(public["public_url"].split("testserver", 1)[1]).status_code == 404
    assert client.get("/public/postmortems/not-a-token").status_code == 404


def test_nothing_is_made_before_publishing_and_other_organizations_see_nothing(client, rt, clock, team):
    t, other = team(), team()
    iid = drafted_incident(rt, clock, t["owner"])
    url = f"{API}/incidents/{iid}/postmortem/customer"
    refused = client.post(url, headers=t["member"].headers)
    assert refused.status_code == 404 and "not been published" in refused.json()["detail"]
    iid = published_incident(client, rt, clock, t["owner"])
    url = f"{API}/incidents/{iid}/postmortem/customer"
    assert client.post(url, headers=t["member"].headers).status_code == 201
    for method, suffix in (("get", ""), ("post", ""), ("patch", ""), ("post", "/publish"), ("post", "/withdraw")):
        kwargs = {"json": {"impact": "x"}} if method == "patch" else {}
        r = getattr(client, method)(url + suffix, headers=other["owner"].headers, **kwargs)
        assert r.status_code == 404, (method, suffix, r.text)


def test_the_page_makes_reviews_and_publishes_with_confirmations(client, rt, clock, team, browser):
    t = team()
    iid = published_incident(client, rt, clock, t["owner"])
    allow_public(rt, t["owner"].actor.org_id)
    page_url = f"/incidents/{iid}/postmortem/customer"
    viewer = browser(t["viewer"])
    assert soup(viewer.get(page_url)).select_one("form[action$='/customer/make']") is None
    member = browser(t["member"])
    assert post(member, f"{page_url}/make", follow_redirects=False).status_code == 303
    shown = soup(member.get(page_url))
    assert shown.select_one("#customer-removed del") is not None
    assert shown.select_one("form[action$='/customer/publish']") is None  # members do not publish
    again = post(member, f"{page_url}/make")  # making it again replaces edits: asked first
    assert again.status_code == 409 and "Make it again" in again.text
    saved = post(member, page_url, {"impact": "Orders failed.", "what_happened": "A slow query.",
                                    "what_we_are_changing": "- Add the index"}, follow_redirects=False)
    assert saved.status_code == 303
    owner = browser(t["owner"])
    asked = post(owner, f"{page_url}/publish")
    assert asked.status_code == 409 and "Anyone with its address" in asked.text
    done = post(owner, f"{page_url}/publish", {"confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    public_link = soup(owner.get(page_url)).select_one("#customer-public a")["href"]
    shown = client.get(public_link.split("testserver", 1)[1])
    assert shown.status_code == 200 and "Add the index" in shown.text and "Orders failed." in shown.text


def test_only_the_owner_allows_public_postmortems_and_is_asked_first(rt, team, browser):
    t = team()
    admin, owner = browser(t["admin"]), browser(t["owner"])
    assert post(admin, "/settings/public-postmortems", {"public_postmortems": "true", "confirm": "yes"}).status_code == 403
    asked = post(owner, "/settings/public-postmortems", {"public_postmortems": "true"})
    assert asked.status_code == 409 and "without signing in" in asked.text
    done = post(owner, "/settings/public-postmortems", {"public_postmortems": "true", "confirm": "yes"},
                follow_redirects=False)
    assert done.status_code == 303
    assert "allowed" in soup(owner.get("/settings")).select_one("#public-state").get_text()
    off = post(owner, "/settings/public-postmortems", {"public_postmortems": "false"}, follow_redirects=False)
    assert off.status_code == 303  # turning it off needs no question: nothing becomes visible
    assert "off" in soup(owner.get("/settings")).select_one("#public-state").get_text()
