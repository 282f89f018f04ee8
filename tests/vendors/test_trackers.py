"""Action items as tracker issues, end to end through the real HTTP surface, for GitHub Issues, Linear and Jira Cloud:
the issue is created with the link back, closes the item when the tracker says so (webhooks signed exactly as each
vendor signs them; bad signatures, replays and stale deliveries refused), a person's reopen is pushed to the
tracker, and the reconcile catches up a change whose webhook never came."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from blametrail.jobs import trackers as tracker_jobs
from blametrail.netguard import policy_from
from tests.vendors.tracker_servers import GitHubServer, JiraServer, LinearServer
from tests.web.test_pages import browser  # noqa: F401 — fixture

SECRET = "whsec-tracker-test"


class GitHub:
    kind = "github_issues"

    def __init__(self):
        self.server = GitHubServer()

    def settings(self):
        return {"token": "ghp_good", "repository": "acme/checkout", "webhook_secret": SECRET,
                "base_url": self.server.url}

    def close_in_tracker(self, key, now):
        number = int(key.rpartition("#")[2])
        issue = self.server.issues[number]
        issue.update(state="closed", state_reason="completed")
        body = json.dumps({"action": "closed", "issue": issue, "repository": {"full_name": "acme/checkout"},
                           "sender": {"login": "dana"}}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return body, {"X-Hub-Signature-256": sig, "X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                      "Content-Type": "application/json"}

    def tracker_state(self, key):
        return self.server.issues[int(key.rpartition("#")[2])]["state"]

    def reopen_silently(self, key):
        self.server.issues[int(key.rpartition("#")[2])].update(state="open", state_reason="reopened")

    def created(self):
        return self.server.issues[1]["body"]

    def assignee(self, key):
        return [a["login"] for a in self.server.issues[int(key.rpartition("#")[2])]["assignees"]] or None


class Linear:
    kind = "linear"

    def __init__(self):
        self.server = LinearServer()

    def settings(self):
        return {"api_key": "lin_api_good", "team_id": "team-1", "webhook_secret": SECRET, "base_url": self.server.url}

    def close_in_tracker(self, key, now):
        self.server.issues[key]["stateId"] = "st-done"
        body = json.dumps({"action": "update", "type": "Issue", "data": {
            "id": self.server.issues[key]["id"], "identifier": key, "state": {"type": "completed", "name": "Done"}},
            "updatedFrom": {"stateId": "st-todo"}, "webhookTimestamp": int(now.timestamp() * 1000)}).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Linear-Signature": sig, "Linear-Delivery": str(uuid.uuid4()), "Linear-Event": "Issue",
                      "Content-Type": "application/json"}

    def tracker_state(self, key):
        return {"st-done": "closed", "st-canceled": "closed"}.get(self.server.issues[key]["stateId"], "open")

    def reopen_silently(self, key):
        self.server.issues[key]["stateId"] = "st-todo"

    def created(self):
        return next(iter(self.server.issues.values()))["description"]

    def assignee(self, key):
        return self.server.issues[key]["assigneeId"] and [self.server.issues[key]["assigneeId"]]


class Jira:
    kind = "jira"

    def __init__(self):
        self.server = JiraServer()

    def settings(self):
        return {"site_url": self.server.url, "email": "dana@acme.test", "api_token": "jira-good",
                "project_key": "OPS", "webhook_secret": SECRET}

    def close_in_tracker(self, key, now):
        self.server.issues[key]["status"] = self.server.status("31")
        body = json.dumps({"timestamp": int(now.timestamp() * 1000), "webhookEvent": "jira:issue_updated",
                           "issue_event_type_name": "issue_generic", "issue": {"key": key, "fields": {
                               "status": self.server.status("31"), "resolution": {"name": "Done"}}}}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return body, {"X-Hub-Signature": sig, "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
                      "Content-Type": "application/json"}

    def tracker_state(self, key):
        return "closed" if self.server.issues[key]["status"]["statusCategory"]["key"] == "done" else "open"

    def reopen_silently(self, key):
        self.server.issues[key]["status"] = self.server.status("11")

    def created(self):
        doc = next(iter(self.server.issues.values()))["fields"]["description"]
        return " ".join(c["text"] for p in doc["content"] for c in p.get("content", []))

    def assignee(self, key):
        who = self.server.issues[key]["fields"].get("assignee")
        return [who["accountId"]] if who else None


@pytest.fixture(params=[GitHub, Linear, Jira], ids=["github_issues", "linear", "jira"])
def tracker(request):
    t = request.param()
    yield t
    t.server.close()


def _item(client, who, title="Add a pool-saturation alert") -> int:
    iid = client.post("/api/v1/incidents", headers=who.headers, json={"title": "Checkout errors",
                                                                      "services": ["checkout"]}).json()["id"]
    r = client.post(f"/api/v1/incidents/{iid}/action-items", headers=who.headers, json={"title": title,
                                                                                         "priority": "high"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _status(client, who, item_id) -> str:
    return client.get(f"/api/v1/action-items/{item_id}", headers=who.headers).json()["status"]


def test_an_item_becomes_an_issue_closes_with_it_and_pushes_a_reopen(client, factory, rt, tracker):
    slug = factory.org(plan="pro")
    owner, member = factory.member(slug, "owner"), factory.member(slug, "member")
    r = client.put(f"/api/v1/integrations/{tracker.kind}", headers=owner.headers, json=tracker.settings())
    assert r.status_code == 200, r.text
    hook = r.json()["inbound_urls"]["webhook"].split("/", 3)[3]
    test = client.post(f"/api/v1/integrations/{tracker.kind}/test", headers=owner.headers).json()
    assert test["ok"], test

    item_id = _item(client, member)
    r = client.post(f"/api/v1/action-items/{item_id}/external", headers=member.headers,
                    json={"tracker": tracker.kind})
    assert r.status_code == 201, r.text
    ext = r.json()
    assert ext["tracker"] == tracker.kind and ext["key"] and ext["url"].startswith(("http://", "https://"))
    assert f"/action-items/{item_id}" in tracker.created()  # the issue links back
    again = client.post(f"/api/v1/action-items/{item_id}/external", headers=member.headers,
                        json={"tracker": tracker.kind})
    assert again.status_code == 409
    assert client.get(f"/api/v1/action-items/{item_id}", headers=member.headers).json()["external"]["key"] == ext["key"]

    body, headers = tracker.close_in_tracker(ext["key"], rt.clock.now())
    bad = client.post("/" + hook, content=body, headers={**headers, **{k: "sha256=00" if "sha256=" in v else "00"
                                                                      for k, v in headers.items()
                                                                      if "Signature" in k}})
    assert bad.status_code == 401 and _status(client, member, item_id) == "open"
    ok = client.post("/" + hook, content=body, headers=headers)
    assert ok.status_code == 200 and ok.json()["status"] == "done", ok.text
    assert _status(client, member, item_id) == "done"
    replay = client.post("/" + hook, content=body, headers=headers)
    assert replay.json().get("duplicate") is True

    # a person reopens the item: the issue is reopened in the tracker (a job after the change commits)
    r = client.patch(f"/api/v1/action-items/{item_id}", headers=member.headers, json={"status": "open"})
    assert r.status_code == 200
    assert tracker.tracker_state(ext["key"]) == "open"

    # the tracker closes it while its webhook is lost: the reconcile catches up
    tracker.close_in_tracker(ext["key"], rt.clock.now())
    counts = tracker_jobs.run_reconcile(factory=rt.factory, box=rt.secret_box, policy=policy_from(rt.settings),
                                        timeout=5, clock=rt.clock.now)
    assert counts == {"read": 1}
    assert _status(client, member, item_id) == "done"
    tracker.reopen_silently(ext["key"])  # nothing is linked to an open item now that it is done: nothing to read
    assert tracker_jobs.run_reconcile(factory=rt.factory, box=rt.secret_box, policy=policy_from(rt.settings),
                                      timeout=5, clock=rt.clock.now) == {}


def test_owners_mapped_to_tracker_users_are_assigned_and_others_are_not(client, factory, rt, tracker):
    slug = factory.org(plan="pro")
    owner, member = factory.member(slug, "owner"), factory.member(slug, "member")
    url = f"/api/v1/integrations/{tracker.kind}"
    bad = client.put(url, headers=owner.headers, json={**tracker.settings(),
                                                       "assignees": "payments = u-77\nsre-team u-88"})
    assert bad.status_code == 422 and "line 2" in bad.json()["detail"], bad.text
    mapping = "# owners to tracker users\nPayments = u-77\n" + member.email + " = u-88\n"
    assert client.put(url, headers=owner.headers, json={**tracker.settings(), "assignees": mapping}).status_code == 200
    assert client.get(url, headers=owner.headers).json()["settings"]["assignees"] == mapping.strip()
    keys = {}
    for who in ("payments", member.email.upper(), "search-team", None):
        item_id = _item(client, member, title=f"Follow-up for {who}")
        if who:
            client.patch(f"/api/v1/action-items/{item_id}", headers=member.headers, json={"owner": who})
        r = client.post(f"/api/v1/action-items/{item_id}/external", headers=member.headers,
                        json={"tracker": tracker.kind})
        assert r.status_code == 201, r.text
        keys[who] = r.json()["key"]
    assert [tracker.assignee(keys[w]) for w in keys] == [["u-77"], ["u-88"], None, None]


def test_tracker_refusals_are_plain_words_and_the_integration_keeps_them(client, factory, rt, tracker):
    owner = factory.member(factory.org(plan="pro"), "owner")
    item_id = _item(client, owner)
    r = client.post(f"/api/v1/action-items/{item_id}/external", headers=owner.headers, json={"tracker": tracker.kind})
    assert r.status_code == 409 and "not set up" in r.json()["detail"]
    client.put(f"/api/v1/integrations/{tracker.kind}", headers=owner.headers, json=tracker.settings())
    tracker.server.fail_next.append((401, {"message": "Bad credentials"}, {}))
    r = client.post(f"/api/v1/action-items/{item_id}/external", headers=owner.headers, json={"tracker": tracker.kind})
    assert r.status_code == 502 and r.json()["type"] == "/problems/upstream-failed"
    assert "rejected" in r.json()["detail"] or "HTTP 401" in r.json()["detail"]
    state = client.get(f"/api/v1/integrations/{tracker.kind}", headers=owner.headers).json()
    assert state["status"] == "error" and state["last_error"] == r.json()["detail"]
    tracker.server.fail_next.append((429, {"message": "slow down"}, {"Retry-After": "17"}))
    r = client.post(f"/api/v1/action-items/{item_id}/external", headers=owner.headers, json={"tracker": tracker.kind})
    assert r.status_code == 502 and "wait 17 s" in r.json()["detail"]
    assert client.get(f"/api/v1/action-items/{item_id}", headers=owner.headers).json()["external"] is None
    unknown = client.post(f"/api/v1/action-items/{item_id}/external", headers=owner.headers, json={"tracker": "trello"})
    assert unknown.status_code == 422


def test_a_stale_linear_delivery_is_refused(client, factory, rt):
    from datetime import timedelta

    t = Linear()
    try:
        owner = factory.member(factory.org(plan="pro"), "owner")
        hook = client.put("/api/v1/integrations/linear", headers=owner.headers,
                          json=t.settings()).json()["inbound_urls"]["webhook"].split("/", 3)[3]
        item_id = _item(client, owner)
        key = client.post(f"/api/v1/action-items/{item_id}/external", headers=owner.headers,
                          json={"tracker": "linear"}).json()["key"]
        body, headers = t.close_in_tracker(key, rt.clock.now() - timedelta(minutes=5))
        r = client.post("/" + hook, content=body, headers=headers)
        assert r.status_code == 401 and "a minute" in r.json()["detail"]
        assert _status(client, owner, item_id) == "open"
    finally:
        t.server.close()


def test_the_item_page_creates_the_issue_and_shows_it(client, factory, rt, browser):
    from tests.web.test_pages import post, soup, text

    t = GitHub()
    try:
        slug = factory.org(plan="pro")
        owner, member = factory.member(slug, "owner", password="correct-horse-battery"), \
            factory.member(slug, "member", password="correct-horse-battery")
        item_id = _item(client, owner)
        c = browser(member)
        assert soup(c.get(f"/action-items/{item_id}")).select_one("#no-trackers") is not None
        client.put("/api/v1/integrations/github_issues", headers=owner.headers, json=t.settings())
        page = soup(c.get(f"/action-items/{item_id}"))
        assert [text(b) for b in page.select(".tracker-form button")] == ["Create issue in GitHub Issues"]
        r = post(c, f"/action-items/{item_id}/external", {"tracker": "github_issues"}, follow_redirects=False)
        assert r.status_code == 303
        page = soup(c.get(f"/action-items/{item_id}"))
        assert "Issue acme/checkout#1 created" in text(page.select_one(".flash-success"))
        assert page.select_one("#item-external a")["href"] == "https://github.com/acme/checkout/issues/1"
        assert page.select(".tracker-form") == []
        again = soup(c.get(f"/action-items/{item_id}"))
        assert again.select_one("#item-external") is not None
    finally:
        t.server.close()
