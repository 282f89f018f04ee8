"""The integration setup pages in a real browser: an owner sets Slack up, sees the URLs to paste, tests it without
leaving the page (the vendor's answer in plain words), and removes it through the confirmation dialog; a member only
reads. Slack's Web API is the local wire server."""

from __future__ import annotations

import pytest

from blametrail import db
from blametrail.orgs import service as orgs
from tests.browser.conftest import PASSWORD
from tests.vendors.slack_server import SlackServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org(live):
    with db.transaction(live.rt.factory) as s:
        acme = orgs.create_org(session=s, slug="vendors", name="Vendors Co", plan="pro", now=live.clock.now())
        for role in ("owner", "member"):
            orgs.create_user(session=s, email=f"{role}@vendors.test", org=acme, role=role, password=PASSWORD,
                             now=live.clock.now())


@pytest.fixture
def slack():
    server = SlackServer()
    yield server
    server.close()


def test_owner_sets_up_tests_and_removes_slack(live, org, open_page, slack):
    page = open_page("owner@vendors.test")
    page.goto("/settings")
    page.click("text=Chat, paging and trackers")
    page.click(".vendor-card[data-kind=slack]")
    page.fill("#v-bot_token", "xoxb-good-token")
    page.fill("#v-signing_secret", "s3cret")
    page.fill("#v-base_url", slack.base_url)
    page.click(".vendor-form button[type=submit]")
    assert "Slack saved" in page.locator(".flash-success").inner_text()
    assert "/inbound/slack/" in page.locator("#inbound-events").inner_text()
    assert page.locator("#v-bot_token").input_value() == ""  # the secret is never sent back

    page.evaluate("window.__stay = 1")
    page.click(".vendor-test-form button")
    page.locator("#vendor-test-result .test-ok").wait_for()
    assert "Connected to the Acme workspace as @blametrail." in page.locator("#vendor-test-result").inner_text()
    assert page.evaluate("window.__stay") == 1  # swapped in by htmx, no reload

    page.click(".vendor-remove-form button")
    assert page.locator("#confirm-dialog").is_visible()
    page.locator("#confirm-dialog button", has_text="Remove").click()
    page.wait_for_url("**/settings/integrations")
    assert page.locator(".vendor-card[data-kind=slack] .badge").inner_text() == "Not set up"


def test_a_member_reads_the_integrations(live, org, open_page):
    page = open_page("member@vendors.test")
    page.goto("/settings/integrations/slack")
    assert page.locator(".vendor-form").count() == 0
    assert "Owners and admins change integrations" in page.locator("#vendor-readonly").inner_text()
