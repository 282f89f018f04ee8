"""The template page's severity levels: the built-in ones shown to start from, an organization's own levels saved
from the form (and used by the next draft: tests/jobs/test_generation_model.py), errors named, read-only for others."""

from __future__ import annotations

from blametrail import db
from blametrail.orgs import templates
from tests.web.test_model_page import template_form
from tests.web.test_pages import browser, post, soup, team, text  # noqa: F401 — fixtures


def test_owner_saves_own_levels_and_goes_back_to_the_built_in_ones(browser, team, rt):
    t = team()
    c = browser(t["owner"])
    page = soup(c.get("/settings/template"))
    data = template_form(page)
    assert data["sev_custom"] == ["0"]  # the built-in levels are in use, and prefilled to start from
    assert "SEV-1" in text(page.select_one(".sev-level[data-severity=SEV-1] legend"))
    assert data["sev_meaning_SEV-1"][0].startswith("Critical")

    data |= {"sev_custom": ["1"], "sev_use_SEV-2": [], "sev_use_SEV-3": [],
             "sev_meaning_SEV-1": ["Customers notice, at once."],
             "sev_SEV-1_0_impacts": ["degraded", "partial", "outage", "total"], "sev_SEV-1_0_minutes": ["0"],
             "sev_SEV-1_0_services": ["1"], "sev_SEV-1_1_impacts": [], "sev_SEV-1_2_impacts": []}
    r = post(c, "/settings/template", data, follow_redirects=False)
    assert r.status_code == 303, text(soup(r).select_one(".form-error"))
    with db.transaction(rt.factory) as s:
        stored = templates.severity_definitions(s, t["owner"].actor.org_id)
    assert [d.severity for d in stored] == ["SEV-1", "SEV-4"]
    assert stored[0].meaning == "Customers notice, at once." and len(stored[0].rules) == 1
    assert stored[0].rules[0].min_minutes == 0

    again = template_form(soup(c.get("/settings/template")))
    assert again["sev_custom"] == ["1"] and again["sev_use_SEV-1"] == ["1"] and "sev_use_SEV-2" not in again
    again["sev_custom"] = ["0"]
    assert post(c, "/settings/template", again, follow_redirects=False).status_code == 303
    with db.transaction(rt.factory) as s:
        assert templates.severity_definitions(s, t["owner"].actor.org_id) is None


def test_a_level_without_rules_or_a_bad_number_is_named_and_nothing_is_saved(browser, team, rt):
    t = team()
    c = browser(t["admin"])
    data = template_form(soup(c.get("/settings/template")))
    data |= {"sev_custom": ["1"], "sev_SEV-2_0_impacts": [], "sev_SEV-2_1_impacts": [], "sev_SEV-2_2_impacts": [],
             "sev_SEV-3_0_minutes": ["ten"]}
    r = post(c, "/settings/template", data)
    assert r.status_code == 422
    errors = text(soup(r).select_one(".form-error"))
    assert "SEV-2 needs at least one rule" in errors and "SEV-3: minutes must be a whole number" in errors
    assert template_form(soup(r))["sev_custom"] == ["1"]  # what was typed stays
    with db.transaction(rt.factory) as s:
        assert templates.severity_definitions(s, t["admin"].actor.org_id) is None


def test_viewers_read_the_levels_in_effect(browser, team, rt):
    t = team()
    page = soup(browser(t["viewer"]).get("/settings/template"))
    assert text(page.select_one("#severity-source")) == "The built-in levels."
    assert [d["data-severity"] for d in page.select(".severity-level")] == ["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
