"""Review and comments, through the API and the document page: comments on sections with replies and resolve; review
requests, approvals tied to the text's version, publishing gated when the organization requires review, and the
approvers named; no new postmortem status."""

from __future__ import annotations

from tests.web.test_pages import browser, drafted_incident, post, soup, team, text  # noqa: F401 — fixtures

API = "/api/v1"


def _settings(client, who, **data):
    r = client.patch(f"{API}/org/settings", json=data, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_comments_on_sections_reply_and_resolve(client, rt, clock, team):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    url = f"{API}/incidents/{iid}/postmortem/comments"
    r = client.post(url, json={"section": "root_cause", "body": "Is the pool size really the cause?"},
                    headers=t["member"].headers)
    assert r.status_code == 201, r.text
    first = r.json()
    reply = client.post(url, json={"body": "Yes: the dashboards show 100/100 in use.", "parent_id": first["id"]},
                        headers=t["admin"].headers).json()
    assert (reply["parent_id"], reply["section"]) == (first["id"], "root_cause")
    nested = client.post(url, json={"body": "Thanks", "parent_id": reply["id"]}, headers=t["member"].headers).json()
    assert nested["parent_id"] == first["id"]  # one level of replies
    assert client.post(url, json={"section": "nope", "body": "x"}, headers=t["member"].headers).status_code == 422
    assert client.post(url, json={"section": "summary", "body": "  "}, headers=t["member"].headers).status_code == 422
    assert client.post(url, json={"section": "summary", "body": "x"}, headers=t["viewer"].headers).status_code == 403

    listed = client.get(url, headers=t["viewer"].headers).json()["items"]
    assert [(c["body"], len(c["replies"])) for c in listed] == [("Is the pool size really the cause?", 2)]
    r = client.patch(f"{API}/postmortem-comments/{reply['id']}", json={"resolved": True}, headers=t["member"].headers)
    assert r.status_code == 200 and r.json()["id"] == first["id"] and r.json()["resolved"] is True
    assert r.json()["resolved_by"] == t["member"].actor.label
    assert client.get(f"{API}/incidents/{iid}/postmortem", headers=t["viewer"].headers).json()["status"] == "draft"

    other = team()
    assert client.patch(f"{API}/postmortem-comments/{first['id']}", json={"resolved": False},
                        headers=other["owner"].headers).status_code == 404
    assert client.get(url, headers=other["owner"].headers).status_code == 404


def test_required_review_gates_publishing_and_an_edit_needs_a_new_approval(client, rt, clock, team):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    base = f"{API}/incidents/{iid}/postmortem"
    r = client.post(f"{base}/reviews", json={"reviewer_ids": [t["admin"].actor.user_id]}, headers=t["member"].headers)
    assert r.status_code == 409 and "Review is off" in r.json()["detail"]
    assert _settings(client, t["owner"], review_mode="required")["review_mode"] == "required"
    assert client.patch(f"{API}/org/settings", json={"review_mode": "sometimes"},
                        headers=t["owner"].headers).status_code == 422

    r = client.post(f"{base}/reviews", json={"reviewer_ids": [t["viewer"].actor.user_id]}, headers=t["member"].headers)
    assert r.status_code == 422  # viewers cannot review
    r = client.post(f"{base}/reviews", json={"reviewer_ids": [t["admin"].actor.user_id]}, headers=t["member"].headers)
    assert r.status_code == 200 and r.json()["reviewers"][0]["state"] == "pending"

    refused = client.post(f"{base}/publish", headers=t["owner"].headers)
    assert refused.status_code == 409 and "reviewed postmortems only" in refused.json()["detail"]
    assert client.post(f"{base}/reviews/decision", json={"decision": "approve"},
                       headers=t["member"].headers).status_code == 409  # not asked
    ok = client.post(f"{base}/reviews/decision", json={"decision": "approve", "note": "Looks right."},
                     headers=t["admin"].headers).json()
    assert ok["approved_by"] == [t["admin"].actor.label]

    version = client.get(base, headers=t["owner"].headers).json()["version"]
    client.patch(base, json={"version": version, "sections": {"summary": "Changed after the approval."}},
                 headers=t["member"].headers)
    state = client.get(f"{base}/reviews", headers=t["viewer"].headers).json()
    assert state["approved_by"] == [] and state["reviewers"][0]["current"] is False
    assert client.post(f"{base}/publish", headers=t["owner"].headers).status_code == 409

    client.post(f"{base}/reviews/decision", json={"decision": "approve"}, headers=t["admin"].headers)
    published = client.post(f"{base}/publish", headers=t["owner"].headers)
    assert published.status_code == 200 and published.json()["status"] == "published"


def test_the_document_page_reviews_and_comments(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    _settings(client, t["owner"], review_mode="optional")
    member, admin, owner = browser(t["member"]), browser(t["admin"]), browser(t["owner"])
    doc = f"/incidents/{iid}/postmortem"

    page = soup(member.get(doc))
    form = page.select_one("form.review-request")
    assert form is not None and page.select_one("#review-state").get_text(strip=True) == "Not reviewed"
    r = post(member, f"{doc}/reviews", {"reviewer_ids": [str(t["admin"].actor.user_id)]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{doc}#review"
    r = post(member, f"{doc}/comments", {"section": "root_cause", "body": "<b>Really</b> the pool?"},
             follow_redirects=False)
    assert r.status_code == 303 and "#comment-" in r.headers["location"]

    page = soup(admin.get(doc))
    thread = page.select_one("section#root_cause .comment-thread")
    assert "<b>Really</b> the pool?" in text(thread)  # escaped
    post(admin, f"{doc}/comments", {"parent_id": thread["id"].split("-")[1], "body": "Yes."})
    post(admin, f"/postmortem-comments/{thread['id'].split('-')[1]}/resolve", {"resolved": "1"})
    assert page.select_one("form.review-decision") is not None
    post(admin, f"{doc}/reviews/decision", {"decision": "approve"})

    page = soup(owner.get(doc))
    assert text(page.select_one("#review-state")).startswith("Approved by")
    assert "Resolved by" in text(page.select_one("section#root_cause .comment-thread.is-resolved"))
    r = post(owner, f"{doc}/publish", {"confirm": "yes", "next": doc}, follow_redirects=False)
    assert r.status_code == 303
    flashed = soup(owner.get(doc)).select_one(".flash-success")
    assert "Postmortem published (version 1). Approved by" in text(flashed)
    viewer = soup(browser(t["viewer"]).get(doc))
    assert viewer.select(".comment-form, .review-request, .review-decision") == []
