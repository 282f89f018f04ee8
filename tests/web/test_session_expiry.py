"""A form posted after the session ended: the login page keeps what was typed and the page it came from; after
logging in the person is brought back to that page (a GET, never the POST's URL and its 405) with the text, and
nothing is sent for them."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from blametrail import db
from blametrail.incidents.models import TimelineEntry
from blametrail.web.pages.common import RESTORE_MAX_CHARS
from tests.web.test_pages import PASSWORD, browser, csrf, open_incident, soup, team  # noqa: F401 — fixtures

TYPED = "Rolled back checkout; error rate <b>falling</b> — \u05e9\u05dc\u05d5\u05dd & \"quotes\"\n" + "x" * 15_000


def expired_browser(browser, member):  # noqa: F811
    """A browser whose login session has ended (logged out elsewhere with the same cookie), CSRF cookie intact."""
    c = browser(member)
    cookie = c.cookies.get("blametrail_session")
    token = csrf(c)
    c.post("/logout", data={"csrftoken": token}, follow_redirects=False)
    stale = browser()
    stale.cookies.set("blametrail_session", cookie)
    stale.cookies.set("csrftoken", token)
    return stale


def updates(rt, incident_id: int) -> int:
    with db.transaction(rt.factory) as s:
        return s.scalar(select(func.count(TimelineEntry.id)).where(TimelineEntry.incident_id == incident_id,
                                                                  TimelineEntry.kind == "update"))


def refused_update(c, incident_id: int, **headers):
    return c.post(f"/incidents/{incident_id}/updates", data={"body": TYPED, "csrftoken": csrf(c)},
                  headers=headers, follow_redirects=False)


def test_expired_post_answers_the_login_page_keeping_the_text_and_the_page(rt, browser, team):  # noqa: F811
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = expired_browser(browser, t["member"])
    r = refused_update(c, incident_id)
    assert r.status_code == 401
    form = soup(r).select_one("form[action='/login']")
    assert form.select_one("input[name=next]")["value"] == f"/incidents/{incident_id}"  # the page, not the POST URL
    assert form.select_one("input[name=restore_action]")["value"] == f"/incidents/{incident_id}/updates"
    assert json.loads(form.select_one("input[name=restore]")["value"]) == {"body": TYPED}  # no csrftoken
    assert "what you typed is kept" in soup(r).select_one("#login-expired").get_text()
    assert updates(rt, incident_id) == 0


def test_same_origin_referer_names_the_page_and_a_foreign_one_is_ignored(rt, browser, team):  # noqa: F811
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = expired_browser(browser, t["member"])
    r = refused_update(c, incident_id, referer=f"http://testserver/incidents/{incident_id}?tab=timeline")
    assert soup(r).select_one("input[name=next]")["value"] == f"/incidents/{incident_id}?tab=timeline"
    r = refused_update(c, incident_id, referer="http://evil.example/phish")
    assert soup(r).select_one("input[name=next]")["value"] == f"/incidents/{incident_id}"


def test_login_brings_the_text_back_to_the_page_and_sends_nothing(rt, browser, team):  # noqa: F811
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = expired_browser(browser, t["member"])
    login_form = soup(refused_update(c, incident_id)).select_one("form[action='/login']")
    data = {i["name"]: i.get("value", "") for i in login_form.select("input[type=hidden]")}
    wrong = c.post("/login", data={**data, "email": t["member"].email, "password": "wrong-password"},
                   follow_redirects=False)
    assert wrong.status_code == 400  # a typo in the password keeps the text too
    data = {i["name"]: i.get("value", "") for i in soup(wrong).select("form[action='/login'] input[type=hidden]")}
    assert json.loads(data["restore"]) == {"body": TYPED}
    r = c.post("/login", data={**data, "email": t["member"].email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 200
    kept = soup(r).select_one("#restore-data")
    assert kept["data-next"] == f"/incidents/{incident_id}"
    assert kept["data-action"] == f"/incidents/{incident_id}/updates"
    assert json.loads(kept["data-fields"]) == {"body": TYPED}
    assert soup(r).select_one("#restore-continue")["href"] == f"/incidents/{incident_id}"
    assert soup(r).select_one(".user-name").get_text(strip=True)  # the header shows who signed in
    page = c.get(kept["data-next"])
    assert page.status_code == 200  # the page the form lives on, logged in: no 405
    form = soup(page).select_one(f"form[action='/incidents/{incident_id}/updates']")
    assert form is not None and form.select_one("textarea[name=body]") is not None  # restore.js fills it by name
    assert soup(page).select_one("script[src='/static/restore.js']") is not None
    assert updates(rt, incident_id) == 0  # nothing was posted for them


def test_secrets_are_never_kept_and_the_text_is_bounded(rt, browser, team):  # noqa: F811
    t = team()
    c = expired_browser(browser, t["owner"])
    r = c.post("/settings/model", data={"csrftoken": csrf(c), "api_key": "sk-live-secret", "password": "hunter22",
                                        "model": "gpt-x", "note": "y" * (RESTORE_MAX_CHARS + 1)},
               follow_redirects=False)
    assert r.status_code == 401
    kept = json.loads(soup(r).select_one("input[name=restore]")["value"])
    assert kept == {"model": "gpt-x"}
    assert "sk-live-secret" not in r.text and "hunter22" not in r.text
    assert "too long to keep" in soup(r).select_one("#login-expired").get_text()


def test_forged_restore_fields_are_checked_at_login(rt, browser, team):  # noqa: F811
    t = team()
    c = browser()
    base = {"email": t["member"].email, "password": PASSWORD, "csrftoken": csrf(c)}
    r = c.post("/login", data={**base, "next": "//evil.example/x", "restore_action": "/incidents/1/updates",
                               "restore": json.dumps({"body": "hi", "secret_token": "s"})}, follow_redirects=False)
    assert r.status_code == 200
    kept = soup(r).select_one("#restore-data")
    assert kept["data-next"] == "/incidents"  # the `next` rules still hold
    assert json.loads(kept["data-fields"]) == {"body": "hi"}
    for restore, action in ((json.dumps({"body": "hi"}), "https://evil.example/"), ("not json", "/incidents"),
                            (json.dumps(["body"]), "/incidents")):
        c2 = browser()
        r = c2.post("/login", data={**base, "csrftoken": csrf(c2), "restore": restore, "restore_action": action},
                    follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/incidents"  # plain login, nothing kept


def test_expired_post_without_csrf_is_still_refused_by_csrf(rt, browser, team):  # noqa: F811
    t = team()
    incident_id = open_incident(rt, t["member"])
    c = expired_browser(browser, t["member"])
    r = c.post(f"/incidents/{incident_id}/updates", data={"body": TYPED}, follow_redirects=False)
    assert r.status_code == 403
    assert "restore" not in r.text


def test_a_page_get_without_a_session_still_redirects(browser, team):  # noqa: F811
    team()
    r = browser().get("/incidents", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/incidents"
