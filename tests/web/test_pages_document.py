"""The postmortem's document page: full text in the organization's order, per-section Edit links, labelled
citations with previews, published versions read-only, the compact card that links to it; and the citation resolver."""

from __future__ import annotations

from blametrail import db
from blametrail.analysis import ids
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.web import citations
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    post,
    soup,
    team,
    text,
)

API = "/api/v1"


def _update_id(rt, org_id: int, incident_id: int) -> str:
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=org_id, incident_id=incident_id)
        entry = next(e for e in incidents.entries(session=s, incident=inc) if e.kind == "update")
        return ids.update_id(entry.id)


def _set_root_cause(client, who, iid: int, root_cause: str) -> None:
    url = f"{API}/incidents/{iid}/postmortem"
    version = client.get(url, headers=who.headers).json()["version"]
    r = client.patch(url, json={"version": version, "sections": {"root_cause": root_cause}}, headers=who.headers)
    assert r.status_code == 200, r.text


def test_the_document_shows_every_section_in_order_with_labelled_citations(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    upd = _update_id(rt, t["owner"].actor.org_id, iid)
    _set_root_cause(client, t["member"], iid, f"A bad config in v2.3 <b>broke</b> checkout ({upd}, upd_999999).")

    page = soup(browser(t["viewer"]).get(f"/incidents/{iid}/postmortem"))
    keys = [s["data-section"] for s in page.select("article.pm-document section.doc-section[data-section]")]
    assert keys[:3] == ["summary", "severity", "customer_impact"] and "root_cause" in keys and keys[-1] == "confidence"
    assert [a["href"] for a in page.select(".doc-toc a")][:2] == ["#summary", "#severity"]

    root = page.select_one("section#root_cause")
    assert "<b>broke</b>" in text(root)  # escaped, not markup
    link = root.select_one("a.cite-link")
    assert link["href"] == f"/incidents/{iid}/evidence/{upd}"
    assert text(link) == f"Update from {t['owner'].actor.label}, 10:05"  # a label a person reads, not "upd_N"
    preview = page.select_one(f"#{link['aria-describedby']}")
    assert preview["role"] == "tooltip" and "Rolled back checkout v2.3" in text(preview)
    missing = root.select_one(".cite-missing")  # an id pointing at nothing is never a link to a 404
    assert missing is not None and missing.find("a") is None and text(missing) == "upd_999999"
    assert text(link) in [text(a) for a in page.select("#evidence-cited a")]
    # a viewer reads: no Edit, no Publish
    assert page.select(".doc-edit") == [] and page.select(".doc-toolbar form") == []


def test_writers_edit_one_section_and_return_to_it(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    member = browser(t["member"])
    page = soup(member.get(f"/incidents/{iid}/postmortem"))
    edit = page.select_one("section#root_cause a.doc-edit")
    assert edit["href"] == f"/incidents/{iid}/postmortem/edit?section=root_cause"
    assert page.select_one(".doc-toolbar form.publish-form") is None  # members do not publish
    form = soup(member.get(edit["href"])).select_one("form.editor-form, form[method=post]")
    assert form is not None
    r = member.get(f"/incidents/{iid}/postmortem/edit?section=root_cause")
    assert soup(r).select_one(f"a[href='/incidents/{iid}/postmortem#root_cause']") is not None  # Cancel goes back


def test_publishing_from_the_document_returns_to_it_and_versions_stay_readable(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    owner = browser(t["owner"])
    page = soup(owner.get(f"/incidents/{iid}/postmortem"))
    form = page.select_one(".doc-toolbar form.publish-form")
    assert form["action"] == f"/incidents/{iid}/postmortem/publish" and form["data-confirm-dialog"]
    r = post(owner, form["action"], {"confirm": "yes", "next": f"/incidents/{iid}/postmortem"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{iid}/postmortem"
    r = post(owner, form["action"], {"confirm": "yes", "next": "https://evil.example/"}, follow_redirects=False)
    assert "evil.example" not in r.headers.get("location", "")  # only this document page is a place to return to

    clock.advance(minutes=1)
    _set_root_cause(client, t["member"], iid, "Rewritten after publishing.")
    page = soup(browser(t["viewer"]).get(f"/incidents/{iid}/postmortem"))
    note = page.select_one("#doc-version-note")
    assert "Edited after publishing" in text(note)
    assert note.select_one("a")["href"] == f"/incidents/{iid}/postmortem?version=1"
    frozen = soup(browser(t["viewer"]).get(f"/incidents/{iid}/postmortem?version=1"))
    assert "Rewritten after publishing." not in text(frozen.select_one("section#root_cause"))
    assert frozen.select(".doc-edit") == [] and "published version" in text(frozen.select_one("#doc-version-note"))
    assert browser(t["viewer"]).get(f"/incidents/{iid}/postmortem?version=7").status_code == 404


def test_the_incident_card_is_compact_and_links_to_the_document(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    card = soup(browser(t["viewer"]).get(f"/incidents/{iid}")).select_one("#postmortem-card")
    assert card.select_one("#pm-open")["href"] == f"/incidents/{iid}/postmortem"
    assert card.select("[data-section=timeline], [data-section=root_cause]") == []  # the full text lives on the page
    assert text(card.select_one(".pm-excerpt"))


def test_the_document_of_another_organization_is_a_404(client, rt, clock, team, browser):
    a, b = team(), team()
    iid = drafted_incident(rt, clock, a["owner"])
    assert browser(b["owner"]).get(f"/incidents/{iid}/postmortem").status_code == 404


def test_resolve_finds_each_kind_and_never_another_incidents_entries(client, rt, clock, team):
    t = team()
    first = drafted_incident(rt, clock, t["owner"])
    second = drafted_incident(rt, clock, t["owner"], title="Other")
    org_id = t["owner"].actor.org_id
    upd_first = _update_id(rt, org_id, first)
    with db.transaction(rt.factory) as s:
        other = incidents.get_or_404(session=s, org_id=org_id, incident_id=second)
        found = citations.resolve(s, org_id=org_id, incident=other, wanted=[upd_first, ids.incident_id(first)])
        assert upd_first not in found  # an update of another incident is not this one's evidence
        assert found[ids.incident_id(first)].url == f"/incidents/{first}"
        pm = postmortems.find(session=s, org_id=org_id, incident_id=first)
        assert pm is not None
    assert citations.collect({"a": ["x upd_1 and deploy_2", {"b": "upd_1"}]}) == ["upd_1", "deploy_2"]
