"""Evidence pages behind every citation, the citation links in the timeline and sections, the print-ready page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blametrail import db
from blametrail.clock import iso
from blametrail.deploys import service as deploys
from blametrail.deploys.schemas import CommitIn, DeployCreate
from blametrail.incidents import service as incidents
from blametrail.postmortems import service as postmortems
from blametrail.postmortems.models import GenerationRun
from blametrail.web.pages.evidence import cite_links, metric_chart
from tests.web.test_pages import (  # noqa: F401 (fixtures)
    browser,
    drafted_incident,
    open_incident,
    resolve,
    soup,
    team,
    text,
)


def _deploy(rt, member, minutes_before: int = 10):
    with db.transaction(rt.factory) as s:
        d = deploys.create(session=s, actor=member.actor, now=rt.clock.now(), data=DeployCreate(
            service="checkout", version="v2.3.0", deployed_at=rt.clock.now() - timedelta(minutes=minutes_before),
            commits=[CommitIn(sha="9f2c4e1a7b3d", author="dana@example.test", message="Pool the payment client",
                              files=["checkout/payments/client.py", "checkout/settings.py"])]))
        return d.id, d.commits[0].id


def _entry(rt, incident_id: int, org_id: int, kind: str, body: str, data: dict) -> int:
    with db.transaction(rt.factory) as s:
        inc = incidents.get_or_404(session=s, org_id=org_id, incident_id=incident_id)
        return incidents.add_entry(session=s, incident=inc, kind=kind, at=rt.clock.now(), body=body,
                                   now=rt.clock.now(), author=f"{kind}:test", data=data).id


FINDINGS = {
    "metrics": [{"id": "metric_1", "series": "error_rate", "service": "checkout", "onset": None, "before": 0.01,
                 "after": 0.3, "magnitude": 29.0, "direction": "up", "unit": "ratio", "source": "prod-prom",
                 "points": []}],
    "logs": [{"id": "log_1", "template": "ERROR payment client pool exhausted (size=<*>)", "service": "checkout",
              "incident_count": 412, "baseline_count": 0, "new": True, "spike_ratio": None, "first_seen": None,
              "samples": ["ERROR payment client pool exhausted (size=20)", "ERROR payment client pool exhausted (size=20)"],
              "source": "prod-loki"}],
}


def _freeze_findings(rt, org_id: int, incident_id: int) -> None:
    """Put metric and log findings into the latest run's frozen evidence (as a connector-backed run would)."""
    with db.transaction(rt.factory) as s:
        pm = postmortems.find(session=s, org_id=org_id, incident_id=incident_id)
        run = s.scalar(select(GenerationRun).where(GenerationRun.postmortem_id == pm.id)
                       .order_by(GenerationRun.id.desc()))
        start = rt.clock.now() - timedelta(minutes=30)
        metrics = [dict(FINDINGS["metrics"][0], onset=iso(start + timedelta(minutes=15)),
                        points=[[iso(start + timedelta(minutes=i)), 0.01 if i < 15 else 0.3] for i in range(30)])]
        logs = [dict(FINDINGS["logs"][0], first_seen=iso(start + timedelta(minutes=15)))]
        run.evidence = {**(run.evidence or {}), "metrics": metrics, "logs": logs}


def test_timeline_and_section_citations_link_to_pages_that_open(browser, team, rt, clock):
    t = team()
    _deploy(rt, t["admin"])
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["viewer"])
    page = soup(c.get(f"/incidents/{incident_id}"))
    timeline_links = [a["href"] for a in page.select("#timeline a.evidence-link")]
    doc = soup(c.get(f"/incidents/{incident_id}/postmortem"))
    section_links = [a["href"] for a in doc.select(".pm-document .doc-section a.cite-link")]
    assert any("/evidence/upd_" in h for h in timeline_links)
    assert any("/evidence/deploy_" in h for h in timeline_links)
    assert any("/evidence/commit_" in h for h in timeline_links)
    assert section_links, "the postmortem's timeline cites evidence"
    for href in set(timeline_links + section_links):
        assert href.startswith(f"/incidents/{incident_id}/evidence/")
        assert c.get(href).status_code == 200, href


def test_update_and_status_change_pages(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["member"])
    page = soup(c.get(f"/incidents/{incident_id}"))
    upd = next(li["id"] for li in page.select("li.source-update"))
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/{upd}"))
    assert text(ev.select_one(".evidence-author")) == t["owner"].email
    assert text(ev.select_one(".evidence-body")) == "Rolled back checkout v2.3; error rate back to normal."
    assert ev.select_one("time[datetime]") is not None
    st = next(li["id"] for li in page.select("li.source-status"))
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/{st}"))
    assert text(ev.select_one(".evidence-state")) in ("Open", "Resolved")
    assert ev.select_one("header nav") is not None  # a normal page of the app


def test_deploy_and_commit_pages(browser, team, rt, clock):
    t = team()
    deploy_id, commit_id = _deploy(rt, t["admin"])
    incident_id = open_incident(rt, t["owner"])
    c = browser(t["member"])
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/deploy_{deploy_id}"))
    assert text(ev.select_one(".deploy-version")) == "v2.3.0"
    commit = ev.select_one(f"#commit_{commit_id}")
    assert text(commit.select_one(".commit-sha")) == "9f2c4e1a7b3d"
    assert text(commit.select_one(".commit-author")) == "dana@example.test"
    assert text(commit.select_one(".commit-message")) == "Pool the payment client"
    assert [text(li) for li in commit.select(".commit-files li")] == ["checkout/payments/client.py",
                                                                      "checkout/settings.py"]
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/commit_{commit_id}"))
    assert "commit-cited" in ev.select_one(f"#commit_{commit_id}")["class"]
    assert ev.select_one(f"a[href='/incidents/{incident_id}/evidence/deploy_{deploy_id}']") is not None


def test_monitor_and_alert_pages(browser, team, rt):
    t = team()
    incident_id = open_incident(rt, t["owner"])
    org_id = t["owner"].actor.org_id
    mon = _entry(rt, incident_id, org_id, "monitor", "Monitor api-health is down", {
        "monitor_id": 1, "monitor": "api-health", "url": "https://shop.example/health", "state": "down",
        "failed_checks": 4, "total_checks": 5, "error_kinds": {"http_5xx": 3, "timeout": 1}, "last_error": "HTTP 503"})
    alert = _entry(rt, incident_id, org_id, "alert", "Alert HighErrorRate firing", {
        "name": "HighErrorRate", "status": "firing", "service": "checkout", "severity": "critical",
        "summary": "5xx above 5%", "labels": {"alertname": "HighErrorRate", "team": "payments"}})
    c = browser(t["viewer"])
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/mon_{mon}"))
    assert text(ev.select_one(".monitor-counts")) == "4 of 5"
    assert [[text(td) for td in tr.select("td")] for tr in ev.select(".error-kinds tbody tr")] == [
        ["http_5xx", "3"], ["timeout", "1"]]
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/alert_{alert}"))
    assert [[text(td) for td in tr.select("td")] for tr in ev.select(".alert-labels tbody tr")] == [
        ["alertname", "HighErrorRate"], ["team", "payments"]]
    assert "5xx above 5%" in text(ev.select_one(".alert-summary"))


def test_metric_chart_and_log_template_from_the_frozen_run(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    _freeze_findings(rt, t["owner"].actor.org_id, incident_id)
    c = browser(t["member"])
    r = c.get(f"/incidents/{incident_id}/evidence/metric_1")
    assert r.status_code == 200
    ev = soup(r)
    svg = ev.select_one("figure.metric-chart svg")
    assert len(svg.select_one("polyline.series")["points"].split()) == 30
    line = svg.select_one("line.change-point")
    assert line["x1"] == line["x2"]
    assert svg.select_one("line.level-before") and svg.select_one("line.level-after")
    assert float(svg.select_one("line.level-before")["y1"]) > float(svg.select_one("line.level-after")["y1"])
    assert "<script" not in r.text.split("<main", 1)[1] and "http" not in str(svg).replace(
        "http://www.w3.org/2000/svg", "")
    assert text(ev.select_one(".metric-before")).startswith("0.01")
    ev = soup(c.get(f"/incidents/{incident_id}/evidence/log_1"))
    assert text(ev.select_one(".log-template")) == "ERROR payment client pool exhausted (size=<*>)"
    assert text(ev.select_one(".log-incident-count")) == "412"
    assert text(ev.select_one(".log-baseline-count")) == "0"
    assert "pool exhausted (size=20)" in text(ev.select_one(".log-samples"))
    assert c.get(f"/incidents/{incident_id}/evidence/metric_2").status_code == 404
    assert c.get(f"/incidents/{incident_id}/evidence/log_9").status_code == 404


def test_unknown_malformed_and_foreign_evidence_ids_answer_404(browser, team, rt, clock):
    mine, theirs = team(), team()
    incident_id = drafted_incident(rt, clock, mine["owner"])
    other_same_org = open_incident(rt, mine["owner"], title="Another one")
    foreign_incident = drafted_incident(rt, clock, theirs["owner"])
    c = browser(mine["owner"])
    theirs_c = browser(theirs["owner"])
    foreign_upd = next(li["id"] for li in soup(theirs_c.get(f"/incidents/{foreign_incident}")).select("li.source-update"))
    mine_upd = next(li["id"] for li in soup(c.get(f"/incidents/{incident_id}")).select("li.source-update"))
    _deploy(rt, theirs["admin"])
    for eid in ("upd_999999", "bogus", "upd_", "deploy_999", "commit_999", foreign_upd, "st_" + mine_upd[4:],
                "metric_1", "log_1", "deploy_1", "commit_1"):
        assert c.get(f"/incidents/{incident_id}/evidence/{eid}").status_code == 404, eid
    assert c.get(f"/incidents/{other_same_org}/evidence/{mine_upd}").status_code == 404  # another incident's
    assert c.get(f"/incidents/{foreign_incident}/evidence/{foreign_upd}").status_code == 404
    assert c.get(f"/incidents/{incident_id}/evidence/{mine_upd}").status_code == 200


def test_cite_links_escapes_text_and_links_only_ids():
    html = str(cite_links("<b>x</b> see upd_3 and metric_12, not fooupd_4", 7))
    assert html.startswith("&lt;b&gt;x&lt;/b&gt; see ")
    assert '<a class="evidence-link" href="/incidents/7/evidence/upd_3"' in html
    assert 'href="/incidents/7/evidence/metric_12"' in html
    assert "fooupd_4" in html and "evidence/upd_4" not in html
    assert str(cite_links("upd_3", None)) == "upd_3"


def test_metric_chart_geometry_without_enough_points():
    assert metric_chart({"points": [["2026-11-26T10:00:00Z", 1.0]]}) is None
    chart = metric_chart({"points": [["2026-11-26T10:00:00Z", 1.0], ["2026-11-26T10:10:00Z", 1.0]],
                          "onset": "2026-11-26T10:05:00Z", "before": 1.0, "after": 1.0})
    assert chart["onset_x"] == (chart["left"] + chart["right"]) / 2


def test_print_page_is_clean_and_follows_the_same_rules(browser, team, rt, clock):
    t = team()
    incident_id = drafted_incident(rt, clock, t["owner"])
    c = browser(t["viewer"])
    r = c.get(f"/incidents/{incident_id}/postmortem/print")
    assert r.status_code == 200
    page = soup(r)
    assert page.select_one("link[rel=stylesheet]")["href"] == "/static/print.css"
    assert page.select("nav, form, button, script, header.site-header") == []
    assert text(page.select_one("h1")) == "Checkout errors"
    assert page.select_one(".pm-sections [data-section=root_cause]") is not None
    assert c.get("/static/print.css").status_code == 200
    assert "@media print" in c.get("/static/print.css").text
    undrafted = open_incident(rt, t["owner"], title="Still open")
    assert c.get(f"/incidents/{undrafted}/postmortem/print").status_code == 404
    other = team()
    assert browser(other["owner"]).get(f"/incidents/{incident_id}/postmortem/print").status_code == 404
