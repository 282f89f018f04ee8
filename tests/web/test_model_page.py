"""Pages of issue 13's third build: the card's progress and fallback notes, the drafting model page (owner edits,
admin reads, the key write-only, confirmations, the live test) and the postmortem template page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from blametrail import db
from blametrail.ai import service as ai
from blametrail.ai.models import AIConfig
from blametrail.orgs import templates
from blametrail.postmortems.models import GenerationRun, Postmortem
from tests.ai.wire import FakeProvider, openai_error, openai_tool_call
from tests.web.test_pages import (  # noqa: F401 — fixtures
    browser,
    card,
    csrf,
    drafted_incident,
    form_fields,
    open_incident,
    post,
    resolve,
    set_ai,
    soup,
    team,
    text,
)

KEY = "sk-test-9f8e7d6c5b4a"


# --- helpers ------------------------------------------------------------------------------------

def model_form(page) -> dict:
    """What the owner's form submits as rendered (one value per field)."""
    return {k: v[0] for k, v in form_fields(page.select_one("form.model-form")).items() if k != "csrftoken"}


def save(c, **changes):
    page = soup(c.get("/settings/model"))
    return post(c, "/settings/model", {**model_form(page), **changes}, follow_redirects=False)


def stored(rt, member) -> AIConfig | None:
    with db.transaction(rt.factory) as s:
        config = ai.get_config(session=s, org_id=member.actor.org_id)
        if config is not None:
            s.expunge(config)
        return config


def put_config(rt, member, **kwargs) -> None:
    data = {"engine": "openai", "model": "gpt-test", "base_url": "http://127.0.0.1:9/v1", "api_key": KEY,
            "output_mode": None, "options": {}} | kwargs
    with db.transaction(rt.factory) as s:
        ai.put(session=s, actor=member.actor, box=rt.secret_box, now=rt.clock.now(), **data)


def generating(rt, clock, member, *, engine: str, step: str | None, step_age: int, run_age: int) -> int:
    """A resolved incident whose postmortem is being drafted right now, at `step` for `step_age` seconds."""
    incident_id = drafted_incident(rt, clock, member)
    now = clock.now()
    with db.transaction(rt.factory) as s:
        pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
        pm.status, pm.attempt = "generating", pm.attempt + 1
        s.add(GenerationRun(org_id=pm.org_id, postmortem_id=pm.id, attempt=pm.attempt, engine=engine,
                            status="running", started_at=now - timedelta(seconds=run_age), step=step,
                            step_at=now - timedelta(seconds=step_age) if step else None))
    return incident_id


# --- the card: progress, fallback, the wait before Regenerate -----------------------------------------------------

def test_card_shows_the_step_its_time_and_the_deadline_while_a_model_drafts(browser, team, rt, clock):
    t = team()
    incident_id = generating(rt, clock, t["owner"], engine="openai:gpt-test", step="asking_model", step_age=23,
                             run_age=31)
    node = card(browser(t["viewer"]), incident_id)
    assert node.has_attr("hx-trigger")  # the card keeps polling itself
    assert text(node.select_one(".pm-progress-now")) == "Asking the model… 23 s (31 s in all)"
    assert [text(li) for li in node.select(".pm-steps li")] == [
        "Gathering evidence (done)", "Asking the model", "Checking citations", "Saving the draft"]
    assert node.select_one(".pm-steps [aria-current=step]").get_text() == "Asking the model"
    expect = text(node.select_one(".pm-expect"))
    assert "usually take under a minute" in expect and "55 s" in expect and "built-in draft" in expect
    clock.advance(seconds=4)  # the next poll tells the time from the server's clock
    assert text(card(browser(t["viewer"]), incident_id).select_one(".pm-step-time")) == "27 s"


def test_card_names_the_organizations_own_deadline_and_the_builtin_steps(browser, team, rt, clock):
    t = team()
    put_config(rt, t["owner"], options={"deadline_seconds": 300})
    incident_id = generating(rt, clock, t["owner"], engine="openai:gpt-test", step="checking_citations", step_age=2,
                             run_age=70)
    node = card(browser(t["member"]), incident_id)
    assert "300 s" in text(node.select_one(".pm-expect"))
    assert text(node.select_one(".pm-step")) == "Checking citations…"
    assert text(node.select_one(".pm-elapsed")) == "(1 min 10 s in all)"
    builtin = generating(rt, clock, t["owner"], engine="builtin", step="asking_model", step_age=1, run_age=1)
    node = card(browser(t["member"]), builtin)
    assert text(node.select_one(".pm-step")) == "Writing the draft…"
    assert [text(li) for li in node.select(".pm-steps li")] == [  # no model: no citations to check
        "Gathering evidence (done)", "Writing the draft", "Saving the draft"]
    assert "built-in draft is stored" not in text(node.select_one(".pm-expect"))  # no model, no deadline


def test_a_queued_draft_says_it_waits_for_a_worker(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    with db.transaction(rt.factory) as s:
        s.execute(update(Postmortem).where(Postmortem.incident_id == incident_id)
                  .values(status="queued", queued_at=clock.now() - timedelta(seconds=8)))
    node = card(browser(t["viewer"]), incident_id)
    assert text(node.select_one(".pm-progress-now")) == "Waiting for a worker… 8 s"
    assert node.select(".pm-steps") == []


def test_a_fallback_draft_says_plainly_the_builtin_draft_was_used_and_why(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    reason = "openai:gpt-test: the model did not answer within 55 s."
    with db.transaction(rt.factory) as s:
        pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident_id))
        pm.error = reason
        run = s.scalar(select(GenerationRun).where(GenerationRun.postmortem_id == pm.id))
        run.status, run.engine, run.error = "fallback", "openai:gpt-test", reason
    node = card(browser(t["viewer"]), incident_id)
    box = node.select_one(".pm-fallback")
    assert "Built-in draft used." in text(box) and "(openai:gpt-test)" in text(box)
    assert text(box.select_one(".pm-error")) == f"Why: {reason}"
    assert "notice-error" not in box["class"] and node.select(".notice-error") == []
    assert len(node.select(".pm-error")) == 1  # the reason once, not again as a generic note


def test_a_model_that_fails_through_the_real_job_leaves_a_plain_fallback_note(browser, team, rt, clock):
    t = team()
    with FakeProvider() as fp:
        put_config(rt, t["owner"], base_url=fp.url + "/v1")
        fp.summary_reply = openai_error(401, "Incorrect API key provided.")  # the live summary asks too
        fp.script(openai_error(401, "Incorrect API key provided."))
        incident_id = drafted_incident(rt, clock, t["owner"])
        assert len(fp.requests) == 1  # a rejected key is not retried
    node = card(browser(t["member"]), incident_id)
    assert text(node.select_one(".pm-status")) == "Draft"
    box = node.select_one(".pm-fallback")
    assert "Built-in draft used. The model (openai:gpt-test) did not produce this draft" in text(box)
    assert "rejected the API key (401)" in text(box.select_one(".pm-error"))
    assert node.select(".notice-error") == []


def test_regenerate_wait_is_one_neutral_message_with_one_countdown(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["member"])
    c = browser(t["member"])
    clock.advance(seconds=20)
    hint = card(c, incident_id).select_one(".pm-regenerate-wait")  # said before anyone clicks
    assert text(hint) == "Regenerate runs at most once every 1 min. Available again in 40 s."
    htmx = c.post(f"/incidents/{incident_id}/postmortem/regenerate",
                  headers={"HX-Request": "true", "x-csrftoken": csrf(c)})
    assert htmx.status_code == 429
    node = soup(htmx).select_one("section#postmortem-card")
    notice = node.select_one(".notice-wait")
    assert notice["role"] == "status" and node.select(".notice-error") == []
    assert text(notice) == "Regeneration is limited to once per 60 seconds. You can regenerate again in 40 s."
    assert len(node.select("[data-countdown]")) == 1 and node.select(".pm-regenerate-wait") == []
    clock.advance(seconds=40)
    assert card(c, incident_id).select(".pm-regenerate-wait") == []


# --- the model page: who sees what --------------------------------------------------------------------------------

def test_settings_links_the_drafting_pages_by_role(browser, team):
    t = team()
    links = {role: [a["href"] for a in soup(browser(t[role]).get("/settings")).select("ul.drafting-links a")]
             for role in ("owner", "admin", "member", "viewer")}
    assert links["owner"] == links["admin"] == ["/settings/model", "/settings/template"]
    assert links["member"] == links["viewer"] == ["/settings/template"]


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_open_the_model_page(browser, team, role):
    c = browser(team()[role])
    assert c.get("/settings/model").status_code == 403
    assert post(c, "/settings/model", {"engine": "builtin", "confirm": "yes"}).status_code == 403
    assert post(c, "/settings/model/test").status_code == 403


def test_admin_reads_the_model_but_no_key_and_no_form(browser, team, rt):
    t = team()
    put_config(rt, t["owner"])
    r = browser(t["admin"]).get("/settings/model")
    assert r.status_code == 200 and KEY not in r.text
    page = soup(r)
    assert text(page.select_one("#current-engine")) == "OpenAI-compatible"
    assert text(page.select_one("#current-key")) == "A key is set"
    assert text(page.select_one("#current-base-url")) == "http://127.0.0.1:9/v1"
    assert page.select("form.model-form, form.model-reset-form") == []
    assert text(page.select_one("#owner-only")) == "Only the owner can change the model or its key."
    assert page.select_one("form.model-test-form button") is not None  # admins may test, as in the API
    r = post(browser(t["admin"]), "/settings/model", {"engine": "builtin", "confirm": "yes"})
    assert r.status_code == 403 and stored(rt, t["owner"]).engine == "openai"


def test_the_form_renders_every_mode_and_option_the_service_knows_with_help(browser, team):
    page = soup(browser(team()["owner"]).get("/settings/model"))
    form = page.select_one("form.model-form")
    assert [o["value"] for o in form.select("#m-output-mode option")][1:] == list(ai.OUTPUT_MODES)
    for key in ai.ENGINE_OPTIONS:
        field = form.select_one(f"[name=opt_{key}]")
        assert field is not None, key
        assert form.select_one(f"label[for=opt-{key}]") is not None
    assert text(form.select_one("#opt-deadline_seconds-help")).startswith("Every request")
    assert [o["value"] for o in form.select("#opt-max_tokens_param option")] == ["", "max_tokens",
                                                                                 "max_completion_tokens"]
    assert [o["value"] for o in form.select("#opt-instructions_in_user_message option")] == ["", "true", "false"]
    assert form.select_one("#m-api-key")["type"] == "password" and form.select_one("#m-api-key")["value"] == ""


# --- the model page: saving ---------------------------------------------------------------------------------------

def test_owner_saves_a_model_with_a_key_that_is_never_shown_again(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = save(c, engine="openai", model="gemma-3-270m", base_url="http://127.0.0.1:8080/v1", api_key=KEY,
             output_mode="json_object", opt_deadline_seconds="300", opt_max_tokens_param="max_tokens",
             opt_instructions_in_user_message="true", opt_timeout_seconds="120.5", confirm="yes")
    assert r.status_code == 303 and r.headers["location"] == "/settings/model"
    config = stored(rt, t["owner"])
    assert (config.engine, config.model, config.base_url, config.output_mode) == (
        "openai", "gemma-3-270m", "http://127.0.0.1:8080/v1", "json_object")
    assert config.options == {"deadline_seconds": 300, "max_tokens_param": "max_tokens",
                              "instructions_in_user_message": True, "timeout_seconds": 120.5}
    assert rt.secret_box.decrypt(config.api_key_encrypted) == KEY
    r = c.get("/settings/model")
    assert KEY not in r.text
    page = soup(r)
    assert "Model settings saved" in text(page.select_one(".flash-success"))
    assert text(page.select_one("#current-key")) == "A key is set"
    assert page.select_one("#m-api-key")["placeholder"] == "A key is set: leave empty to keep it"
    assert page.select_one("#opt-instructions_in_user_message option[selected]")["value"] == "true"
    # an empty key keeps the stored one
    assert save(c, model="gemma-3-1b").status_code == 303
    assert rt.secret_box.decrypt(stored(rt, t["owner"]).api_key_encrypted) == KEY


def test_removing_the_key_is_confirmed_first(browser, team, rt):
    t = team()
    put_config(rt, t["owner"])
    c = browser(t["owner"])
    r = save(c, remove_key="on")
    assert r.status_code == 409
    page = soup(r)
    assert "The stored API key will be removed" in text(page.select_one(".model-confirm"))
    assert page.select_one(".model-confirm input[name=confirm][type=checkbox]")["value"] == "yes"
    assert stored(rt, t["owner"]).api_key_encrypted is not None
    assert save(c, remove_key="on", confirm="yes").status_code == 303
    assert stored(rt, t["owner"]).api_key_encrypted is None
    assert text(soup(c.get("/settings/model")).select_one("#current-key")) == "No key"


def test_turning_to_another_provider_is_confirmed_first(browser, team, rt):
    t = team()
    put_config(rt, t["owner"])
    c = browser(t["owner"])
    r = save(c, engine="anthropic", model="claude-test", base_url="")
    assert r.status_code == 409
    risks = text(soup(r).select_one(".model-confirm"))
    assert "Drafts will be sent to Anthropic instead of OpenAI" in risks and "key will be removed" in risks
    assert stored(rt, t["owner"]).engine == "openai"
    # the form carries what the browser's confirmation needs: the saved values to compare with
    form = soup(c.get("/settings/model")).select_one("form.model-form")
    assert form.has_attr("data-confirm-changes") and form.select_one("#m-engine")["data-saved"] == "openai"
    assert form.select_one("input[type=hidden][name=confirm]")["value"] == ""
    assert save(c, engine="anthropic", model="claude-test", base_url="", confirm="yes").status_code == 303
    assert (stored(rt, t["owner"]).engine, stored(rt, t["owner"]).api_key_encrypted) == ("anthropic", None)


def test_invalid_settings_come_back_with_readable_errors_and_without_the_key(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    r = save(c, engine="openai", model="", base_url="ftp://models.example", api_key=KEY, opt_max_retries="99",
             confirm="yes")
    assert r.status_code == 422 and KEY not in r.text
    page = soup(r)
    errors = [text(li) for li in page.select("#model-errors li")]
    assert "Model: the openai engine needs a model name" in errors
    assert "Base URL: must be an http:// or https:// URL" in errors
    assert "Retries: must be a number from 0 to 10" in errors
    assert text(page.select_one("#key-not-saved")) == "The key you typed was not saved; type it again."
    assert page.select_one("#m-base-url")["value"] == "ftp://models.example"  # what was typed stays
    assert stored(rt, t["owner"]) is None
    r = save(c, api_key=KEY, remove_key="on", confirm="yes")
    assert r.status_code == 422  # no stored key: nothing to remove, but typing one and removing it is a contradiction


def test_owner_goes_back_to_the_installation_settings_after_confirming(browser, team, rt):
    t = team()
    put_config(rt, t["owner"])
    c = browser(t["owner"])
    page = soup(c.get("/settings/model"))
    assert page.select_one("form.model-reset-form")["data-confirm"].startswith("Remove this organization's")
    r = post(c, "/settings/model/reset")
    assert r.status_code == 409 and stored(rt, t["owner"]) is not None
    assert soup(r).select_one("#m-reset-confirm")["required"] is not None
    assert post(c, "/settings/model/reset", {"confirm": "yes"}, follow_redirects=False).status_code == 303
    assert stored(rt, t["owner"]) is None
    page = soup(c.get("/settings/model"))
    assert text(page.select_one(".model-source")) == "Installation settings"
    assert page.select("form.model-reset-form") == []


# --- the model page: the live test -------------------------------------------------------------------------------

def test_the_test_reports_in_plain_words_and_stores_nothing(browser, team, rt):
    t = team()
    admin = browser(t["admin"])
    r = admin.post("/settings/model/test", headers={"HX-Request": "true", "x-csrftoken": csrf(admin)})
    assert r.status_code == 200
    assert text(soup(r).select_one(".model-test-ok strong")) == "Nothing to test."  # the built-in engine
    owner = browser(t["owner"])
    form = model_form(soup(owner.get("/settings/model")))
    with FakeProvider() as fp:
        fp.script(openai_tool_call({"status": "ok", "sum": 5}))
        typed = {**form, "engine": "openai", "model": "gpt-test", "base_url": fp.url + "/v1", "api_key": KEY}
        r = owner.post("/settings/model/test", data={**typed, "csrftoken": csrf(owner)},
                       headers={"HX-Request": "true", "x-csrftoken": csrf(owner)})
        assert fp.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    box = soup(r).select_one(".model-test-ok")
    assert text(box.select_one("strong")).startswith("It works: the model answered in ")
    assert "valid structured output in tool mode" in text(box)
    assert stored(rt, t["owner"]) is None
    # without JavaScript the whole page comes back, the result beside the form and the typed key not echoed
    r = post(owner, "/settings/model/test", {**typed, "base_url": "ftp://nowhere"})
    assert r.status_code == 200 and KEY not in r.text
    page = soup(r)
    assert text(page.select_one("#model-form-test-result .model-test-failed strong")) == (
        "These settings cannot be tested yet.")
    assert "Base URL: must be an http:// or https:// URL" in text(page.select_one("#model-form-test-result"))
    assert text(page.select_one("#key-not-saved")) == ("The key you typed was used for this test only; type it again "
                                                        "to save it.")


# --- the template page ----------------------------------------------------------------------------------------------

def template_form(page) -> dict:
    return {k: v for k, v in form_fields(page.select_one("form.template-form")).items() if k != "csrftoken"}


def test_admin_edits_service_owners_and_instructions(browser, team, rt):
    t = team()
    c = browser(t["admin"])
    page = soup(c.get("/settings/template"))
    data = template_form(page)
    assert data["owner_service"] == ["", ""] and data["version"] == ["0"]  # blank rows to fill
    data |= {"owner_service": ["checkout", "search"], "owner_team": ["payments team", "discovery"],
             "instr_summary": ["Three sentences for executives."]}
    r = post(c, "/settings/template", data, follow_redirects=False)
    assert r.status_code == 303
    with db.transaction(rt.factory) as s:
        read = templates.to_read(s, t["admin"].actor.org_id)
    assert read["service_owners"] == {"checkout": "payments team", "search": "discovery"}
    assert read["section_instructions"] == {"summary": "Three sentences for executives."}
    page = soup(c.get("/settings/template"))
    assert "Template saved" in text(page.select_one(".flash-success"))
    data = template_form(page)
    assert data["owner_service"] == ["checkout", "search", "", ""]
    # remove a row with its Remove box (its position), add one in a blank row
    data |= {"owner_remove": ["1"], "owner_service": ["checkout", "search", "ledger", ""],
             "owner_team": ["payments team", "discovery", "finance", ""]}
    assert post(c, "/settings/template", data, follow_redirects=False).status_code == 303
    with db.transaction(rt.factory) as s:
        assert templates.service_owners(s, t["admin"].actor.org_id) == {"checkout": "payments team",
                                                                         "ledger": "finance"}


def test_template_rows_that_cannot_be_kept_are_named(browser, team):
    c = browser(team()["owner"])
    data = template_form(soup(c.get("/settings/template")))
    data |= {"owner_service": ["checkout", "", "Checkout"], "owner_team": ["", "ops", "payments"]}
    r = post(c, "/settings/template", data)
    assert r.status_code == 422
    errors = [text(li) for li in soup(r).select("#template-errors li")]
    assert errors == ["Service owners row 1: name the team that owns checkout, or tick Remove.",
                      "Service owners row 2: name the service ops owns."]
    data |= {"owner_team": ["payments", "", "payments"], "owner_service": ["checkout", "", "Checkout"]}
    assert "is listed twice" in text(soup(post(c, "/settings/template", data)).select_one("#template-errors"))
    data = template_form(soup(c.get("/settings/template"))) | {"instr_summary": ["x" * 1001]}
    r = post(c, "/settings/template", data)
    assert r.status_code == 422 and "Summary" in text(soup(r).select_one("#template-errors"))


def test_a_template_saved_meanwhile_is_not_overwritten_silently(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    data = template_form(soup(c.get("/settings/template")))
    with db.transaction(rt.factory) as s:
        templates.put(session=s, actor=t["admin"].actor, now=rt.clock.now(), data={"service_owners": {"db": "dba"}})
    data |= {"owner_service": ["checkout", ""], "owner_team": ["payments", ""]}
    r = post(c, "/settings/template", data)
    assert r.status_code == 409
    page = soup(r)
    assert "Someone else saved the template" in text(page.select_one("#template-conflict"))
    assert template_form(page)["owner_service"][0] == "checkout"  # what was typed is still there
    with db.transaction(rt.factory) as s:
        assert templates.service_owners(s, t["owner"].actor.org_id) == {"db": "dba"}
    assert post(c, "/settings/template", template_form(page), follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_read_the_template(browser, team, rt, role):
    t = team()
    with db.transaction(rt.factory) as s:
        templates.put(session=s, actor=t["owner"].actor, now=rt.clock.now(),
                      data={"service_owners": {"checkout": "payments"},
                            "section_instructions": {"root_cause": "Name the mechanism."}})
    c = browser(t[role])
    page = soup(c.get("/settings/template"))
    assert page.select("form.template-form") == []
    assert [text(td) for td in page.select(".owner-row td")] == ["checkout", "payments"]
    assert text(page.select_one(".instruction[data-section=root_cause] dd")) == "Name the mechanism."
    assert [a["href"] for a in page.select("nav[aria-label=Drafting] a")] == ["/settings", "/settings/template"]
    r = post(c, "/settings/template", {"owner_service": "x", "owner_team": "y"})
    assert r.status_code == 403


def test_extra_sections_and_the_order_are_edited_on_the_page(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    data = template_form(soup(c.get("/settings/template")))
    assert data["extra_key"] == [""] and data["pos_summary"] == ["1"] and data["pos_confidence"] == ["10"]
    data |= {"extra_key": ["customer_comms"], "extra_title": ["Customer communication"],
             "extra_instruction": ["Who was told what, and when."], "pos_timeline": ["0"]}
    r = post(c, "/settings/template", data, follow_redirects=False)
    assert r.status_code == 303, r.text
    with db.transaction(rt.factory) as s:
        layout = templates.section_layout(s, t["owner"].actor.org_id)
    assert [p["key"] for p in layout][:2] == ["timeline", "summary"] and layout[-1]["key"] == "customer_comms"
    assert layout[-1] == {"key": "customer_comms", "title": "Customer communication", "extra": True,
                          "instruction": "Who was told what, and when."}
    data = template_form(soup(c.get("/settings/template")))
    assert data["extra_key"] == ["customer_comms", ""] and data["pos_customer_comms"] == ["11"]
    data |= {"pos_customer_comms": ["2"]}  # move it up, then a bad key is refused with the field named
    assert post(c, "/settings/template", data, follow_redirects=False).status_code == 303
    with db.transaction(rt.factory) as s:
        assert [p["key"] for p in templates.section_layout(s, t["owner"].actor.org_id)][:3] == [
            "timeline", "customer_comms", "summary"]
    data = template_form(soup(c.get("/settings/template")))
    bad = post(c, "/settings/template", {**data, "extra_key": ["customer_comms", "Bad Key"],
                                         "extra_title": ["Customer communication", "X"]})
    assert bad.status_code == 422 and "Extra sections" in bad.text
    data |= {"extra_remove": ["0"]}  # removing it drops it from the order too
    assert post(c, "/settings/template", data, follow_redirects=False).status_code == 303
    with db.transaction(rt.factory) as s:
        assert all(not p["extra"] for p in templates.section_layout(s, t["owner"].actor.org_id))
    viewer = browser(t["viewer"])
    assert "Sections, in order" in viewer.get("/settings/template").text
