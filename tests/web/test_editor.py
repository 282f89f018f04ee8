"""The postmortem editor page: one section at a time, saves merged per section, the conflict panel (only the
sections both people changed, theirs vs mine), table rows without JavaScript, the Markdown preview."""

from __future__ import annotations

from blametrail.web.pages import editform
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    form_fields,
    pm_row,
    post,
    soup,
    team,
    text,
)


def form(c, incident_id: int, section: str | None = None) -> dict[str, list[str]]:
    url = f"/incidents/{incident_id}/postmortem/edit" + (f"?section={section}" if section else "")
    r = c.get(url)
    assert r.status_code == 200, r.text
    page = soup(r)
    editor = page.select_one("form.editor")
    for el in editor.select("input:not([type=hidden]), select, textarea"):
        assert page.select_one(f"label[for='{el['id']}']") is not None, el
    return form_fields(editor)


def save(c, incident_id: int, data: dict, **kwargs):
    return c.post(f"/incidents/{incident_id}/postmortem/edit", data=data, follow_redirects=False, **kwargs)


def test_one_section_editor_shows_and_saves_only_that_section(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    data = form(c, incident_id, "root_cause")
    assert set(data) == {"csrftoken", "version", "section", "root_cause"}
    assert data["section"] == ["root_cause"]
    data["root_cause"] = ["The pool was sized for v2.2."]
    r = save(c, incident_id, data)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{incident_id}/postmortem#root_cause"
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert (pm.sections["root_cause"], pm.edited_keys) == ("The pool was sized for v2.2.", ["root_cause"])

    timeline = form(c, incident_id, "timeline")
    assert {k for k in timeline if not k.startswith("timeline_")} == {"csrftoken", "version", "section"}
    assert c.get(f"/incidents/{incident_id}/postmortem/edit?section=nope").status_code == 422


def test_two_people_editing_different_sections_keep_both(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    alice, bob = browser(t["member"]), browser(t["admin"])
    alice_data = form(alice, incident_id)  # the whole editor
    bob_data = form(bob, incident_id, "summary")
    bob_data["summary"] = ["Bob's summary."]
    assert save(bob, incident_id, bob_data).status_code == 303
    alice_data["root_cause"] = ["Alice's root cause."]
    r = save(alice, incident_id, alice_data)  # her form still holds the old summary: untouched, so no conflict
    assert r.status_code == 303, r.text
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert (pm.sections["summary"], pm.sections["root_cause"]) == ("Bob's summary.", "Alice's root cause.")
    assert sorted(pm.edited_keys) == ["root_cause", "summary"]


def test_conflict_panel_lists_only_sections_both_changed_and_saves_the_rest(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    alice, bob = browser(t["member"]), browser(t["admin"])
    alice_data, bob_data = form(alice, incident_id), form(bob, incident_id)
    bob_data["summary"] = ["Bob's summary."]
    bob_data["severity"] = ["SEV-1"]
    assert save(bob, incident_id, bob_data).status_code == 303
    alice_data["summary"] = ["Alice's summary."]
    alice_data["root_cause"] = ["Alice's root cause."]
    r = save(alice, incident_id, alice_data)
    assert r.status_code == 409
    page = soup(r)
    panel = page.select(".conflict-section")
    assert [p["data-section"] for p in panel] == ["summary"]  # never severity (only Bob) nor root cause (only her)
    assert text(panel[0].select_one(".theirs pre")) == "Bob's summary."
    assert text(panel[0].select_one(".mine pre")) == "Alice's summary."
    assert "Root cause" in text(page.select_one(".saved-sections"))
    assert page.select_one("form.editor") is None
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert (pm.sections["summary"], pm.sections["severity"], pm.sections["root_cause"]) == (
        "Bob's summary.", "SEV-1", "Alice's root cause.")

    choice = form_fields(page.select_one("form.conflict-form"))
    assert choice["version"] == [str(pm.version)]
    assert page.select_one("input[name=choice_summary][checked]")["value"] == "theirs"
    choice["choice_summary"] = ["mine"]
    r = save(alice, incident_id, choice)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{incident_id}/postmortem"
    after = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert (after.sections["summary"], after.sections["severity"], after.version) == (
        "Alice's summary.", "SEV-1", pm.version + 1)


def test_keep_theirs_saves_nothing(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    alice, bob = browser(t["member"]), browser(t["admin"])
    alice_data, bob_data = form(alice, incident_id, "summary"), form(bob, incident_id, "summary")
    bob_data["summary"] = ["Bob's summary."]
    save(bob, incident_id, bob_data)
    alice_data["summary"] = ["Alice's summary."]
    page = soup(save(alice, incident_id, alice_data))
    version = pm_row(rt, t["owner"].actor.org_id, incident_id).version
    choice = form_fields(page.select_one("form.conflict-form"))
    assert choice["section"] == ["summary"]
    choice["choice_summary"] = ["theirs"]
    r = save(alice, incident_id, choice)
    assert r.headers["location"] == f"/incidents/{incident_id}/postmortem#summary"
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert (pm.version, pm.sections["summary"]) == (version, "Bob's summary.")


def test_tampered_conflict_choice_is_a_clear_4xx(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    version = pm_row(rt, t["owner"].actor.org_id, incident_id).version
    data = {"version": str(version), "resolve": "1", "conflict_key": "summary", "choice_summary": "mine"}
    assert post(c, f"/incidents/{incident_id}/postmortem/edit", {**data, "mine_summary": "{not json"}).status_code == 422
    assert post(c, f"/incidents/{incident_id}/postmortem/edit", {**data, "mine_summary": "[1]"}).status_code == 422


def test_table_rows_are_added_removed_and_moved_without_javascript(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    data = form(c, incident_id, "action_items")
    data["action_title"][:3] = ["First", "Second", "Third"]
    data["action_origin"][:3] = ["", "", ""]
    data["summary"] = ["ignored: not this editor's section"]
    r = save(c, incident_id, {**data, "op": "action_items:add"})
    assert r.status_code == 200
    again = form_fields(soup(r).select_one("form.editor"))
    assert again["action_title"][:3] == ["First", "Second", "Third"] and len(again["action_title"]) == len(
        data["action_title"]) + 1
    r = save(c, incident_id, {**again, "op": "action_items:down:0"})
    moved = form_fields(soup(r).select_one("form.editor"))
    assert moved["action_title"][:3] == ["Second", "First", "Third"]
    r = save(c, incident_id, {**moved, "op": "action_items:remove:2"})
    removed = form_fields(soup(r).select_one("form.editor"))
    assert removed["action_title"][:2] == ["Second", "First"] and "Third" not in removed["action_title"]
    r = save(c, incident_id, {**removed, "op": "action_items:up:1"})
    up = form_fields(soup(r).select_one("form.editor"))
    assert up["action_title"][:2] == ["First", "Second"]
    assert pm_row(rt, t["owner"].actor.org_id, incident_id).edited_keys == []  # nothing saved yet
    assert save(c, incident_id, up).status_code == 303
    pm = pm_row(rt, t["owner"].actor.org_id, incident_id)
    assert [a["title"] for a in pm.sections["action_items"]][:2] == ["First", "Second"]
    assert pm.edited_keys == ["action_items"]


def test_moved_rows_keep_their_hidden_fields(browser, team, rt, clock):
    """An action item's kind and evidence follow the row when it is moved (the row carries where it came from)."""
    from sqlalchemy import update

    from blametrail import db
    from blametrail.postmortems.models import Postmortem

    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    items = [{"title": "Alert on 5xx", "priority": "high", "kind": "detect", "evidence": ["metric_1"]},
             {"title": "Size the pool", "priority": "medium", "kind": "prevent", "evidence": ["deploy_1"]}]
    with db.transaction(rt.factory) as s:
        pm = s.query(Postmortem).filter_by(incident_id=incident_id).one()
        s.execute(update(Postmortem).where(Postmortem.id == pm.id).values(
            sections={**pm.sections, "action_items": items}))
        s.execute(update(Postmortem.__table__.metadata.tables["postmortem_revision"]).where(
            Postmortem.__table__.metadata.tables["postmortem_revision"].c.postmortem_id == pm.id).values(
            sections={**pm.sections, "action_items": items}))
    c = browser(t["member"])
    data = form(c, incident_id, "action_items")
    r = save(c, incident_id, {**data, "op": "action_items:down:0"})
    moved = form_fields(soup(r).select_one("form.editor"))
    assert save(c, incident_id, moved).status_code == 303
    stored = pm_row(rt, t["owner"].actor.org_id, incident_id).sections["action_items"]
    assert [(a["title"], a["kind"], a["evidence"]) for a in stored] == [
        ("Size the pool", "prevent", ["deploy_1"]), ("Alert on 5xx", "detect", ["metric_1"])]


def test_timeline_fields_fit(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    page = soup(browser(t["member"]).get(f"/incidents/{incident_id}/postmortem/edit?section=timeline"))
    assert page.select_one("link[href='/static/editor.css']") and page.select_one("script[src='/static/editor.js']")
    assert page.select_one("input[name=timeline_at]")["class"] == ["at-input"]
    assert page.select_one("td.col-wide textarea[name=timeline_description]") is not None
    assert page.select_one("button[name=op][value='timeline:add']") is not None
    assert page.select_one("script:not([src])") is None and page.select_one("[style]") is None


def test_markdown_preview_is_sanitized_with_and_without_javascript(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    md = "**Pool** exhausted <script>alert(1)</script> [x](javascript:alert(1))"
    r = post(c, f"/incidents/{incident_id}/postmortem/preview", {"field": "summary", "summary": md})
    assert r.status_code == 200
    html = soup(r)
    assert html.select_one(".md-preview strong").text == "Pool"
    assert html.select_one("script") is None and "javascript:" not in str(html.select("a"))
    assert post(c, f"/incidents/{incident_id}/postmortem/preview", {"field": "severity"}).status_code == 422
    viewer = browser(t["viewer"])
    assert post(viewer, f"/incidents/{incident_id}/postmortem/preview", {"field": "summary"}).status_code == 403

    data = form(c, incident_id, "summary")
    data["summary"] = [md]
    r = save(c, incident_id, {**data, "op": "preview:summary"})
    assert r.status_code == 200
    page = soup(r)
    assert page.select_one("#preview-f-summary .md-preview strong").text == "Pool"
    assert page.select_one("textarea#f-summary").text.strip() == md  # the typed text stays
    assert pm_row(rt, t["owner"].actor.org_id, incident_id).edited_keys == []


def test_markdown_rendering_rules():
    assert editform.render_markdown("# T\n\n- a\n- b") == "<h1>T</h1>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"
    assert "<img" not in editform.render_markdown('<img src=x onerror="alert(1)">')
    assert 'rel="noopener noreferrer nofollow"' in editform.render_markdown("[a](https://example.test)")
    assert editform.apply_op({"timeline": [{"a": 1}, {"a": 2}]}, "timeline:up:1")["timeline"] == [{"a": 2}, {"a": 1}]
    assert editform.apply_op({"timeline": [{"a": 1}]}, "timeline:down:0")["timeline"] == [{"a": 1}]
    assert editform.apply_op({"timeline": []}, "bogus:add") == {"timeline": []}
