"""Published versions through the API and the pages: frozen text, edits after publishing marked everywhere,
republish by owners and admins only, older versions reachable, other organizations see nothing."""

from __future__ import annotations

from blametrail.postmortems.export import escape_text
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    post,
    soup,
    team,
    text,
)

API = "/api/v1"


def problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert (body["type"], body["status"]) == (f"/problems/{slug}", status)
    return body


def get(client, who, url: str) -> dict:
    r = client.get(url, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def edit(client, who, url: str, summary: str) -> dict:
    version = get(client, who, url)["version"]
    r = client.patch(url, json={"version": version, "sections": {"summary": summary}}, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_publish_edit_republish_through_the_api(client, rt, clock, team):
    t = team()
    owner, admin, member, viewer = t["owner"], t["admin"], t["member"], t["viewer"]
    iid = drafted_incident(rt, clock, owner)
    url = f"{API}/incidents/{iid}/postmortem"
    before = get(client, viewer, url)
    assert (before["published_version"], before["edited_after_publish"]) == (None, None)
    assert problem(client.get(f"{url}/published", headers=viewer.headers), 404, "not-found")["detail"]

    clock.advance(minutes=1)
    first = client.post(f"{url}/publish", headers=owner.headers)
    assert first.status_code == 200, first.text
    assert (first.json()["published_version"], first.json()["edited_after_publish"]) == (1, None)
    frozen = get(client, viewer, f"{url}/published")
    assert frozen == {"version": 1, "latest_version": 1, "revision": frozen["revision"],
                      "published_at": "2026-11-26T10:16:00Z", "published_by": owner.email,
                      "sections": before["sections"]}

    clock.advance(minutes=1)
    edited = edit(client, member, url, "Amended after publishing")
    assert edited["status"] == "published"  # the seed's status stays
    assert edited["edited_after_publish"] == {"by": member.email, "at": "2026-11-26T10:17:00Z"}
    assert edited["published_version"] == 1
    assert get(client, viewer, url)["edited_after_publish"] == edited["edited_after_publish"]
    assert get(client, viewer, f"{url}/published") == frozen  # the published text did not move

    md = client.get(f"{url}/export.md", headers=viewer.headers).text
    assert "Amended after publishing" in md  # the export carries the current text, marked as such
    assert md.split("\n\n")[1].startswith("> **Edited after publishing version 1 — not yet republished")
    assert f"- **Version:** Edited after publishing version 1 — not yet republished (last edit 2026-11-26 10:17 UTC " \
           f"by {escape_text(member.email)})." in md

    problem(client.post(f"{url}/publish", headers=member.headers), 403, "forbidden")
    problem(client.post(f"{url}/publish", headers=viewer.headers), 403, "forbidden")
    assert get(client, viewer, f"{url}/published")["version"] == 1

    clock.advance(minutes=1)
    second = client.post(f"{url}/publish", headers=admin.headers)
    assert second.status_code == 200, second.text
    assert (second.json()["status"], second.json()["published_version"]) == ("published", 2)
    assert (second.json()["published_at"], second.json()["published_by"]) == ("2026-11-26T10:18:00Z", admin.email)
    assert second.json()["edited_after_publish"] is None
    latest = get(client, viewer, f"{url}/published")
    assert (latest["version"], latest["latest_version"], latest["published_by"]) == (2, 2, admin.email)
    assert latest["sections"]["summary"] == "Amended after publishing"
    old = get(client, viewer, f"{url}/published?version=1")
    assert (old["version"], old["latest_version"], old["sections"]) == (1, 2, frozen["sections"])
    md = client.get(f"{url}/export.md", headers=viewer.headers).text
    assert f"- **Version:** Published version 2 (2026-11-26 10:18 UTC, by {escape_text(admin.email)})" in md
    assert "not yet republished" not in md

    body = problem(client.post(f"{url}/publish", headers=owner.headers), 409, "invalid-state")
    assert "nothing changed since version 2" in body["detail"]
    problem(client.get(f"{url}/published?version=3", headers=viewer.headers), 404, "not-found")
    problem(client.get(f"{url}/published?version=0", headers=viewer.headers), 422, "validation")
    problem(client.get(f"{url}/published?version=x", headers=viewer.headers), 422, "validation")
    assert [r["kind"] for r in get(client, viewer, f"{url}/revisions")] == ["ai", "publish", "edit", "publish"]


def test_another_organization_sees_no_published_version(client, rt, clock, team):
    mine, theirs = team(), team()
    iid = drafted_incident(rt, clock, mine["owner"])
    url = f"{API}/incidents/{iid}/postmortem"
    assert client.post(f"{url}/publish", headers=mine["owner"].headers).status_code == 200
    for role in ("owner", "viewer"):
        for path in ("/published", "/published?version=1"):
            body = problem(client.get(url + path, headers=theirs[role].headers), 404, "not-found")
            assert "Checkout" not in body["detail"]
        problem(client.post(f"{url}/publish", headers=theirs[role].headers), 404, "not-found")
    assert get(client, mine["viewer"], f"{url}/published")["version"] == 1


def test_print_page_marks_unapproved_text_and_prints_a_published_version(client, browser, rt, clock, team):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    url = f"{API}/incidents/{iid}/postmortem"
    viewer = browser(t["viewer"])
    page = soup(viewer.get(f"/incidents/{iid}/postmortem/print"))
    assert page.select_one("#version-note") is None and page.select_one("#print-version") is None
    assert "not published" in text(page.select_one(".print-kicker"))

    original = get(client, t["owner"], url)["sections"]["summary"]
    assert client.post(f"{url}/publish", headers=t["owner"].headers).status_code == 200
    page = soup(viewer.get(f"/incidents/{iid}/postmortem/print"))
    assert page.select_one("#version-note") is None
    assert text(page.select_one("#print-version")).startswith("Published version 1 (")

    clock.advance(minutes=1)
    edit(client, t["member"], url, "Unapproved <b>rewrite</b>")
    r = viewer.get(f"/incidents/{iid}/postmortem/print")
    page = soup(r)
    note = text(page.select_one("#version-note"))
    assert note.startswith("Edited after publishing version 1 — not yet republished")
    assert t["member"].email in note and "not yet approved" in note
    assert "edited after publishing" in text(page.select_one(".print-kicker"))
    assert text(page.select_one("[data-section=summary] .prose")) == "Unapproved <b>rewrite</b>"
    assert "<b>rewrite</b>" not in r.text

    frozen = soup(viewer.get(f"/incidents/{iid}/postmortem/print?version=1"))
    assert frozen.select_one("#version-note") is None  # version 1 is the latest published version
    assert text(frozen.select_one("#print-version")).startswith("Published version 1 (")
    assert text(frozen.select_one("[data-section=summary] .prose")) == original
    assert "published version 1" in text(frozen.select_one(".print-kicker"))
    assert viewer.get(f"/incidents/{iid}/postmortem/print?version=2").status_code == 404
    assert viewer.get(f"/incidents/{iid}/postmortem/print?version=0").status_code == 422

    assert client.post(f"{url}/publish", headers=t["admin"].headers).status_code == 200
    older = soup(viewer.get(f"/incidents/{iid}/postmortem/print?version=1"))
    assert "Version 2 is the latest" in text(older.select_one("#version-note"))
    assert text(older.select_one("[data-section=summary] .prose")) == original
    other = team()
    assert browser(other["owner"]).get(f"/incidents/{iid}/postmortem/print?version=1").status_code == 404


def test_republish_from_the_page_names_the_new_version(client, browser, rt, clock, team):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    url = f"{API}/incidents/{iid}/postmortem"
    assert client.post(f"{url}/publish", headers=t["owner"].headers).status_code == 200
    edit(client, t["member"], url, "Amended after publishing")
    member = browser(t["member"])
    card = soup(member.get(f"/incidents/{iid}")).select_one("#postmortem-card")
    note = card.select_one(".pm-edited-after-publish")
    assert note is not None and "published version 1" in text(note)
    assert note.select_one("a")["href"] == f"/incidents/{iid}/postmortem?version=1"
    assert not [b for b in card.select("form.publish-form button") if "publish" in text(b).lower()]  # members: no
    admin_card = soup(browser(t["admin"]).get(f"/incidents/{iid}")).select_one("#postmortem-card")
    assert [text(b) for b in admin_card.select("form.publish-form button")] == ["Republish"]
    r = post(member, f"/incidents/{iid}/postmortem/publish", {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 403
    admin = browser(t["admin"])
    r = post(admin, f"/incidents/{iid}/postmortem/publish", {"confirm": "yes"})
    assert r.status_code == 200, r.text
    assert any("Postmortem published (version 2)." in text(n) for n in soup(r).select(".flash, .notice, [role=status]"))
    assert get(client, t["viewer"], f"{url}/published")["version"] == 2
    after = soup(browser(t["admin"]).get(f"/incidents/{iid}")).select_one("#postmortem-card")
    assert after.select_one(".pm-edited-after-publish") is None and not after.select("form.publish-form")
    r = post(admin, f"/incidents/{iid}/postmortem/publish", {"confirm": "yes"})
    assert r.status_code == 409 and "nothing changed since version 2" in r.text
