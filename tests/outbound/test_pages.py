"""Outbound webhook pages: add an endpoint (secret shown once), test it, see the log, redeliver, turn off, delete
(asked first); errors named; read-only for members and viewers."""

from __future__ import annotations

from werkzeug import Response

from tests.web.test_pages import browser, post, soup, team, text  # noqa: F401 — fixtures


def test_owner_adds_tests_and_deletes_an_endpoint(browser, team, httpserver):
    httpserver.expect_request("/hooks", method="POST").respond_with_handler(lambda r: Response("", status=204))
    t = team()
    c = browser(t["owner"])
    bad = post(c, "/settings/outbound-webhooks", {"url": "ftp://nope", "events": ["incident.opened"]})
    assert bad.status_code == 422 and text(soup(bad).select_one("#outbound-errors"))
    r = post(c, "/settings/outbound-webhooks", {"url": httpserver.url_for("/hooks"), "description": "bus",
                                                "events": ["incident.opened", "postmortem.published"]},
             follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(r.headers["location"]))
    assert text(page.select_one("#outbound-secret code")).startswith("whsec_")
    again = soup(c.get(r.headers["location"]))
    assert again.select_one("#outbound-secret") is None  # shown once
    tested = soup(post(c, r.headers["location"] + "/test"))
    assert "Ping answered HTTP 204" in text(tested.select_one(".flash-success"))
    assert text(tested.select_one(".delivery-row .badge")) == "Succeeded"
    redeliver = tested.select_one(".delivery-row form")["action"]
    assert post(c, redeliver, follow_redirects=False).status_code == 303
    off = soup(post(c, r.headers["location"] + "/enabled", {"enabled": "0"}))
    assert text(off.select_one("#outbound-state")) == "Off"
    asked = post(c, r.headers["location"] + "/delete")
    assert asked.status_code == 409
    assert post(c, r.headers["location"] + "/delete", {"confirm": "yes"}, follow_redirects=False).status_code == 303
    assert soup(c.get("/settings/outbound-webhooks")).select(".outbound-row") == []


def test_viewers_read_only(browser, team):
    t = team()
    page = soup(browser(t["viewer"]).get("/settings/outbound-webhooks"))
    assert page.select(".outbound-form") == []
    assert post(browser(t["viewer"]), "/settings/outbound-webhooks", {"url": "https://x.example/h",
                                                                       "events": ["incident.opened"]}).status_code == 403
