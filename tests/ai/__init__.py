"""Tests of the AI context: prompt building, scrubbing, grounding, injection resistance and the live summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blametrail.analysis.evidence import (
    AlertEvidence,
    CommitEvidence,
    DeployEvidence,
    EvidencePack,
    IncidentFacts,
    MonitorEvidence,
    StatusEvidence,
    UpdateEvidence,
)
from blametrail.analysis.observations import LogEvidence, MetricEvidence

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_pack(*, updates=None, deploys=None, alerts=None, monitors=None, metrics=None, logs=None, statuses=None,
              severity="SEV-2", services=("checkout",), resolved=True, title="Checkout errors",
              description="Customers see 500s at checkout") -> EvidencePack:
    """A small, realistic pack: a bad deploy of checkout, an alert, updates that name it, a metric and a log."""
    commit = CommitEvidence(id="commit_1", sha="abc1234def5678", author="dev@example.com",
                            message="Switch payment client to the new pool", files=("payments/client.py",),
                            committed_at=at(-50))
    default_deploys = (DeployEvidence(id="deploy_1", service="checkout", environment="production", version="v2.3",
                                      deployed_at=at(-5), commits=(commit,)),)
    default_updates = (
        UpdateEvidence(id="upd_1", at=at(2), author="alice", body="Checkout returning 500s since about 10:00."),
        UpdateEvidence(id="upd_2", at=at(20), author="bob", body="Rolled back checkout v2.3 to v2.2; errors gone."),
    )
    default_alerts = (AlertEvidence(id="alert_1", at=at(1), name="CheckoutErrorRate", status="firing",
                                    service="checkout", severity="critical", summary="Error rate above 5%"),)
    default_monitors = (MonitorEvidence(id="mon_1", at=at(3), monitor="checkout-health", state="down",
                                        url="https://checkout.example.com/health", failed_checks=3, total_checks=3,
                                        last_error="HTTP 500"),)
    default_metrics = (MetricEvidence(id="metric_1", series="error_rate", service="checkout", onset=at(0),
                                      before=0.01, after=0.2, magnitude=19.0, direction="up", unit="ratio",
                                      source="prom"),)
    default_logs = (LogEvidence(id="log_1", template="PoolTimeout: payment client pool exhausted after <*> ms",
                                service="checkout", incident_count=1200, baseline_count=0, new=True,
                                spike_ratio=None, first_seen=at(0), samples=("PoolTimeout ... 3000 ms",),
                                source="loki"),)
    default_statuses = (StatusEvidence(id="st_1", at=at(0), status="open", actor="alice", detail="Incident opened"),)
    if resolved:
        default_statuses += (StatusEvidence(id="st_2", at=at(25), status="resolved", actor="bob",
                                            detail="Resolved by bob"),)
    facts = IncidentFacts(id=1, title=title, description=description, severity=severity, services=tuple(services),
                          started_at=at(0), resolved_at=at(25) if resolved else None,
                          resolved_by="bob" if resolved else None, created_by="alice")
    return EvidencePack(
        incident=facts, window_start=at(-60), window_end=at(25) if resolved else at(30),
        updates=default_updates if updates is None else tuple(updates),
        deploys=default_deploys if deploys is None else tuple(deploys),
        alerts=default_alerts if alerts is None else tuple(alerts),
        monitor_events=default_monitors if monitors is None else tuple(monitors),
        metrics=default_metrics if metrics is None else tuple(metrics),
        logs=default_logs if logs is None else tuple(logs),
        status_changes=default_statuses if statuses is None else tuple(statuses),
        observed=True,
    )
