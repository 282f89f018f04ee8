"""The drafting model page and the template page in a real browser.

The owner points the organization at a local server speaking OpenAI's streamed wire protocol (tests/ai/wire.py),
tests the typed settings before saving, confirms the provider change, and sees a key that is never shown again;
the test of the settings in effect reports a wrong structure and the model's deadline in plain words. Admins read
the page, members and viewers are refused. The template page adds and removes service-owner rows.
"""

from __future__ import annotations

import re

import pytest

from blametrail import db
from blametrail.ai import service as ai
from blametrail.orgs import service as orgs
from blametrail.orgs import templates
from tests.ai.wire import FakeProvider, openai_text, openai_tool_call
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.slow
KEY = "sk-live-test-5a4b3c2d1e"
ROLES = ("owner", "admin", "member", "viewer")


@pytest.fixture(scope="module")
def org(live):
    """An organization with one member per role; their email addresses and the organization's id."""
    now = live.clock.now()
    with db.transaction(live.rt.factory) as s:
        made = orgs.create_org(session=s, slug="modelco", name="Model Co", plan="pro", now=now)
        for role in ROLES:
            orgs.create_user(session=s, email=f"{role}@modelco.test", org=made, role=role, password=PASSWORD, now=now)
        return {"org_id": made.id, **{role: f"{role}@modelco.test" for role in ROLES}}


@pytest.fixture(scope="module")
def server():
    with FakeProvider() as fp:
        yield fp


def stored(live, org_id: int):
    with db.transaction(live.rt.factory) as s:
        config = ai.get_config(session=s, org_id=org_id)
        return None if config is None else (config.engine, config.model, config.base_url,
                                             config.api_key_encrypted is not None, dict(config.options or {}))


def test_owner_tests_then_saves_a_model_and_the_key_stays_hidden(live, org, server, open_page):
    page = open_page(org["owner"])
    page.goto("/settings")
    page.click("ul.drafting-links >> text=Drafting model")
    page.wait_for_url("**/settings/model")
    assert page.locator("#current-engine").inner_text() == "Built-in engine"

    page.select_option("#m-engine", "openai")
    page.fill("#m-model", "gpt-test")
    page.fill("#m-base-url", server.url + "/v1")
    page.fill("#m-api-key", KEY)
    server.script(openai_tool_call({"status": "ok", "sum": 5}))
    page.click("text=Test these settings before saving")
    result = page.locator("#model-form-test-result .model-test-ok")
    result.wait_for()
    assert re.match(r"It works: the model answered in [\d.]+ m?s with structured output", result.inner_text())
    sent = server.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {KEY}" and sent["json"]["model"] == "gpt-test"
    assert stored(live, org["org_id"]) is None  # a test stores nothing

    dialogs = []
    page.evaluate("window.__stayed = 'yes'")
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("text=Save model settings")
    assert "Drafts will be sent to another provider" in dialogs[0]
    assert page.evaluate("window.__stayed") == "yes"  # dismissed: the form was not sent
    assert stored(live, org["org_id"]) is None

    page.once("dialog", lambda d: d.accept())
    page.click("text=Save model settings")
    page.wait_for_url("**/settings/model")
    page.locator(".flash-success").wait_for()
    assert stored(live, org["org_id"])[:4] == ("openai", "gpt-test", server.url + "/v1", True)
    assert page.locator("#current-key").inner_text() == "A key is set"
    assert KEY not in page.content()
    assert page.locator("#m-api-key").input_value() == ""


def test_the_test_in_effect_reports_a_wrong_structure_and_the_deadline(live, org, server, open_page):
    page = open_page(org["owner"])
    page.goto("/settings/model")
    server.script(openai_text("Sure! Here is a friendly answer with no JSON at all."))
    page.click("text=Test the settings in effect")
    failed = page.locator("#model-test-result .model-test-failed")
    failed.wait_for()
    assert "not in the structure drafts need" in failed.inner_text()
    assert "Try another output mode" in failed.inner_text()

    page.fill("#opt-deadline_seconds", "5")
    page.click("text=Save model settings")  # same provider and server: nothing to confirm
    page.wait_for_url("**/settings/model")
    assert stored(live, org["org_id"])[4] == {"deadline_seconds": 5}
    server.script(openai_tool_call({"status": "ok", "sum": 5}, sleep=8))  # answers after the deadline
    page.click("text=Test the settings in effect")
    failed = page.locator("#model-test-result .model-test-failed")
    failed.wait_for(timeout=20_000)
    assert "did not answer within 5 s" in failed.inner_text()


def test_admin_reads_and_members_and_viewers_are_refused(live, org, open_page):
    page = open_page(org["admin"])
    page.goto("/settings/model")
    assert page.locator("#current-key").inner_text() == "A key is set"
    assert page.locator("form.model-form").count() == 0
    assert page.locator("#owner-only").is_visible()
    for role in ("member", "viewer"):
        page = open_page(org[role])
        page.goto("/settings")
        assert page.locator("ul.drafting-links a").all_inner_texts() == ["Postmortem template"]
        response = page.goto("/settings/model")
        assert response.status == 403
        assert "cannot manage members, tokens and integrations" in page.locator("main").inner_text()


def test_template_rows_are_added_and_removed(live, org, open_page):
    page = open_page(org["admin"])
    page.goto("/settings/template")
    rows = page.locator("#owner-rows tr")
    assert rows.count() == 2  # blank rows to fill
    page.fill("#os-0", "checkout")
    page.fill("#ot-0", "payments team")
    page.fill("#os-1", "search")
    page.fill("#ot-1", "discovery")
    page.click("text=Add a service")  # app.js adds a third, empty row
    assert rows.count() == 3 and page.locator("#os-2").input_value() == ""
    page.fill("#os-2", "ledger")
    page.fill("#ot-2", "finance")
    page.check("#or-1")  # remove search
    page.fill("#instr-summary", "Three sentences for executives.")
    page.click("text=Save template")
    page.wait_for_url("**/settings/template")
    assert "Template saved" in page.locator(".flash-success").inner_text()
    with db.transaction(live.rt.factory) as s:
        content = templates.content(s, org["org_id"])
    assert {k: content[k] for k in ("service_owners", "section_instructions")} == {
        "service_owners": {"checkout": "payments team", "ledger": "finance"},
        "section_instructions": {"summary": "Three sentences for executives."}}
    assert content["extra_sections"] == [] and content["severity_definitions"] == []
    viewer = open_page(org["viewer"])
    viewer.goto("/settings/template")
    assert viewer.locator(".owner-row").all_inner_texts() == ["checkout\tpayments team", "ledger\tfinance"]
    assert viewer.locator("form.template-form").count() == 0
