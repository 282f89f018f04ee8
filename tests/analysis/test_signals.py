"""Monitor and alert evidence reach the timeline and the impact, each cited."""

from datetime import UTC, datetime, timedelta

from blametrail.analysis.evidence import AlertEvidence, EvidencePack, IncidentFacts, MonitorEvidence, StatusEvidence
from blametrail.analysis.writer import write_postmortem
from blametrail.engines.sections import Sections

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _pack() -> EvidencePack:
    inc = IncidentFacts(id=1, title="api is down", description="", severity="SEV-2", services=("api",),
                        started_at=T0, resolved_at=T0 + timedelta(minutes=12), resolved_by="monitor:api health",
                        created_by=None)
    down = MonitorEvidence(id="mon_2", at=T0 + timedelta(minutes=1), monitor="api health", state="down",
                           first_failure_at=T0, failed_checks=2, total_checks=2, error_kinds=(("status", 2),),
                           last_error="HTTP 503")
    up = MonitorEvidence(id="mon_5", at=T0 + timedelta(minutes=13), monitor="api health", state="up",
                         first_failure_at=T0, recovered_at=T0 + timedelta(minutes=12), failed_checks=12,
                         total_checks=14, error_kinds=(("status", 10), ("timeout", 2)))
    alert = AlertEvidence(id="alert_3", at=T0 + timedelta(minutes=2), name="HighErrorRate", status="firing",
                          service="api", severity="SEV-2", summary="5xx above 5%")
    opened = StatusEvidence(id="st_1", at=T0, status="open", actor="monitor:api health",
                            detail="Incident opened by monitor:api health (SEV-2)")
    return EvidencePack(incident=inc, window_start=T0 - timedelta(hours=2), window_end=inc.resolved_at,
                        status_changes=(opened,), monitor_events=(down, up), alerts=(alert,))


def test_monitor_and_alert_rows_are_cited_on_the_timeline():
    out = write_postmortem(_pack())
    Sections.model_validate(out)
    by_source = {row["source"]: row for row in out["timeline"]}
    assert by_source["alert"]["evidence"] == ["alert_3"] and "HighErrorRate firing on api" in by_source["alert"]["description"]
    monitor_rows = [r for r in out["timeline"] if r["source"] == "monitor"]
    assert [r["evidence"] for r in monitor_rows] == [["mon_2"], ["mon_5"]]
    assert "12 of 14 checks failed (86%)" in monitor_rows[1]["description"]


def test_impact_uses_the_monitor_window_and_alerts():
    impact = write_postmortem(_pack())["customer_impact"]
    assert impact["duration_minutes"] == 12
    assert "(12 minutes)" in impact["description"] and "mon_5" in impact["description"]
    assert "status ×10, timeout ×2" in impact["description"]
    assert "HighErrorRate" in impact["description"] and "alert_3" in impact["description"]
    assert "not established" not in impact["description"]
