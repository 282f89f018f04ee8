"""History pages: each revision opens whole with what changed since the one before; any two compare side by side,
word by word for prose and row by row for tables; bad choices are a 422, another organization's a 404."""

from __future__ import annotations

from tests.web.test_pages import browser, drafted_incident, form_fields, soup, team, text  # noqa: F401 — fixtures

API = "/api/v1"


def _edit(client, who, iid, **sections):
    url = f"{API}/incidents/{iid}/postmortem"
    version = client.get(url, headers=who.headers).json()["version"]
    r = client.patch(url, json={"version": version, "sections": sections}, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_revisions_open_and_any_two_compare(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"])
    original = client.get(f"{API}/incidents/{iid}/postmortem", headers=t["owner"].headers).json()["sections"]
    _edit(client, t["member"], iid, summary="Checkout failed for 15 minutes after the v2.3 deploy.")
    wells = list(original["what_went_well"]) + ["Paging reached the right team at once."]
    _edit(client, t["member"], iid, what_went_well=wells)
    c = browser(t["viewer"])

    listing = soup(c.get(f"/incidents/{iid}/postmortem/revisions"))
    links = [a["href"] for a in listing.select("a.revision-link")]
    assert links == [f"/incidents/{iid}/postmortem/revisions/{n}" for n in (3, 2, 1)]
    pick = form_fields(listing.select_one("form.compare-pick"))
    assert pick == {"a": ["2"], "b": ["3"]}  # the last change, ready to compare

    second = soup(c.get(links[1]))
    assert "Changed since revision 1: Summary." == text(second.select_one("#rev-changed"))
    assert "Checkout failed for 15 minutes" in text(second.select_one("section#summary"))
    assert second.select_one("#rev-next")["href"].endswith("/revisions/3")
    first = soup(c.get(links[2]))
    assert text(first.select_one("#rev-changed")) == "The first text of this postmortem." and not first.select("#rev-previous")

    page = soup(c.get(f"/incidents/{iid}/postmortem/compare?a=1&b=3"))
    assert text(page.select_one("#cmp-summary")).startswith("2 sections changed")
    summary = page.select_one(".cmp-section[data-section=summary]")
    added = [text(x) for x in summary.select(".cmp-right ins.diff-add")]
    assert added and all("[added:" in x for x in added)
    assert summary.select(".cmp-left del.diff-del")  # the draft's words that went
    well = page.select_one(".cmp-section[data-section=what_went_well]")
    assert "Paging reached the right team at once." in text(well.select_one(".cmp-row-added"))
    assert page.select_one(".cmp-section[data-section=root_cause].cmp-same details") is not None  # folded

    current = soup(c.get(f"/incidents/{iid}/postmortem/compare?a=3"))
    assert text(current.select_one("#cmp-right")) == "Current text"
    assert text(current.select_one("#cmp-summary")) .startswith("The two texts are the same")


def test_bad_and_foreign_choices(client, rt, clock, team, browser):
    t, other = team(), team()
    iid = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    assert c.get(f"/incidents/{iid}/postmortem/compare?a=x&b=1").status_code == 422
    assert c.get(f"/incidents/{iid}/postmortem/compare?a=1&b=99").status_code == 404
    assert c.get(f"/incidents/{iid}/postmortem/revisions/99").status_code == 404
    assert browser(other["owner"]).get(f"/incidents/{iid}/postmortem/revisions/1").status_code == 404
    assert browser(other["owner"]).get(f"/incidents/{iid}/postmortem/compare?a=1").status_code == 404
