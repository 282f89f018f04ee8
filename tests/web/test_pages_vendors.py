"""Integration settings pages: the list, one page per kind with its fields, URLs to paste, Test and Remove; secrets
never shown; errors named; read-only for members and viewers. Slack's Web API is the local wire server."""

from __future__ import annotations

import pytest

from tests.vendors.slack_server import SlackServer
from tests.web.test_pages import browser, post, soup, team, text  # noqa: F401 — fixtures


@pytest.fixture
def slack():
    server = SlackServer()
    yield server
    server.close()


def test_owner_sets_up_slack_tests_it_and_removes_it(browser, team, slack):
    t = team()
    c = browser(t["owner"])
    listing = soup(c.get("/settings/integrations"))
    assert text(listing.select_one(".vendor-card[data-kind=slack] .badge")) == "Not set up"
    page = soup(c.get("/settings/integrations/slack"))
    assert page.select_one("#v-bot_token")["type"] == "password" and page.select_one("#v-notify_channel")
    assert page.select(".vendor-test-form") == []  # nothing to test before it is set up

    r = post(c, "/settings/integrations/slack", {"bot_token": "xoxb-good-token", "signing_secret": "s3cret",
                                                 "base_url": slack.base_url}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get("/settings/integrations/slack"))
    assert "xoxb-good-token" not in page.text and "s3cret" not in page.text  # write-only
    assert page.select_one("#v-bot_token")["placeholder"].startswith("Stored")
    assert "/inbound/slack/" in text(page.select_one("#inbound-events"))
    assert text(page.select_one("#inbound-commands")).endswith("/commands")

    tested = soup(post(c, "/settings/integrations/slack/test"))
    assert "Connected to the Acme workspace" in text(tested.select_one(".test-ok"))
    assert text(tested.select_one("#vendor-status")) == "Working"
    # saving again with the secret fields empty keeps the secrets; a wrong token then fails in plain words
    post(c, "/settings/integrations/slack", {"bot_token": "xoxb-wrong", "base_url": slack.base_url})
    failed = soup(post(c, "/settings/integrations/slack/test"))
    assert "Slack rejected the bot token (invalid_auth)" in text(failed.select_one(".test-failed"))
    assert "invalid_auth" in text(soup(c.get("/settings/integrations")).select_one(".vendor-card[data-kind=slack]"))

    asked = post(c, "/settings/integrations/slack/remove")
    assert asked.status_code == 409 and "Remove the Slack integration?" in asked.text
    r = post(c, "/settings/integrations/slack/remove", {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert text(soup(c.get("/settings/integrations")).select_one(".vendor-card[data-kind=slack] .badge")) == "Not set up"


def test_bad_settings_are_named_and_nothing_is_stored(browser, team):
    t = team()
    c = browser(t["admin"])
    r = post(c, "/settings/integrations/slack", {"bot_token": "xoxb-1", "base_url": "ftp://nope"})
    assert r.status_code == 422
    errors = text(soup(r).select_one("#vendor-errors"))
    assert "signing_secret" in errors.lower().replace(" ", "_") or "Signing secret" in errors
    assert soup(r).select_one("#v-base_url")["value"] == "ftp://nope"  # what was typed stays (never the secrets)
    assert text(soup(c.get("/settings/integrations")).select_one(".vendor-card[data-kind=slack] .badge")) == "Not set up"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_only_read(browser, team, role):
    t = team()
    c = browser(t[role])
    page = soup(c.get("/settings/integrations/slack"))
    assert page.select("form") == [] or not page.select(".vendor-form")
    assert text(page.select_one("#vendor-readonly")).startswith("Not set up")
    assert post(c, "/settings/integrations/slack", {"bot_token": "x", "signing_secret": "y"}).status_code == 403
    assert c.get("/settings/integrations/nope").status_code == 404


def test_the_incident_page_links_a_channel_and_shows_the_import(browser, team, rt, slack):
    from datetime import timedelta

    from tests.web.test_pages import open_incident

    t = team()
    iid = open_incident(rt, t["owner"])
    c = browser(t["member"])
    assert soup(c.get(f"/incidents/{iid}")).select_one("#slack-panel") is None  # no Slack, no panel
    post(browser(t["owner"]), "/settings/integrations/slack", {"bot_token": "xoxb-good-token",
                                                               "signing_secret": "s", "base_url": slack.base_url})
    slack.users = {"U0DANA": {"id": "U0DANA", "name": "dana", "profile": {"display_name": "Dana"}}}
    slack.message("C0PAGE", f"{(rt.clock.now() + timedelta(minutes=1)).timestamp():.6f}", "Seeing 502s on checkout")
    rt.clock.advance(minutes=2)

    bad = post(c, f"/incidents/{iid}/slack-channel", {"channel_id": "#general"})
    assert bad.status_code == 422 and "not a Slack channel id" in text(soup(bad).select_one("#slack-link-error"))
    r = post(c, f"/incidents/{iid}/slack-channel", {"channel_id": "C0PAGE"}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(c.get(f"/incidents/{iid}"))
    assert text(page.select_one("#slack-status")) == "Imported"
    assert "1 new" in text(page.select_one("#slack-panel"))
    assert any("Seeing 502s on checkout" in text(li) and "Dana" in text(li) for li in page.select("li.source-update"))
    viewer = soup(browser(t["viewer"]).get(f"/incidents/{iid}"))
    assert viewer.select_one("#slack-panel") is not None and viewer.select(".slack-link-form") == []


def test_tracker_assignees_are_a_text_area_checked_line_by_line(browser, team):
    c = browser(team()["admin"])
    page = soup(c.get("/settings/integrations/github_issues"))
    assert page.select_one("textarea#v-assignees") is not None
    assert "unlisted owners stay unassigned" in text(page.select_one("#v-assignees-hint"))
    fields = {"token": "ghp_x", "repository": "acme/checkout", "webhook_secret": "s", "base_url": "https://github.test"}
    r = post(c, "/settings/integrations/github_issues", {**fields, "assignees": "dana@acme.test = dana-gh\nno equals"})
    assert r.status_code == 422 and "line 2" in text(soup(r).select_one("#vendor-errors"))
    assert soup(r).select_one("textarea#v-assignees").get_text().strip() == "dana@acme.test = dana-gh\nno equals"
    r = post(c, "/settings/integrations/github_issues", {**fields, "assignees": "dana@acme.test = dana-gh"},
             follow_redirects=False)
    assert r.status_code == 303
    assert text(soup(c.get("/settings/integrations/github_issues")).select_one("textarea#v-assignees")) \
        == "dana@acme.test = dana-gh"
