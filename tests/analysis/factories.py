"""Evidence-pack factories for analysis tests: build packs by hand, with short defaults."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from blametrail.analysis.evidence import (
    CommitEvidence,
    DeployEvidence,
    EvidencePack,
    IncidentFacts,
    StatusEvidence,
    UpdateEvidence,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    """Return T0 shifted by a number of minutes (negative = before the incident)."""
    return T0 + timedelta(minutes=minutes)


def update(uid: str, minutes: float, body: str, author: str | None = "sam") -> UpdateEvidence:
    """Build a human update posted `minutes` after T0."""
    return UpdateEvidence(id=uid, at=at(minutes), author=author, body=body)


def status(sid: str, minutes: float, value: str, actor: str | None = None, detail: str = "") -> StatusEvidence:
    """Build a status change at `minutes` after T0."""
    return StatusEvidence(id=sid, at=at(minutes), status=value, actor=actor, detail=detail)


def commit(
    cid: str, sha: str, message: str, author: str | None = "alice", files: tuple[str, ...] = ()
) -> CommitEvidence:
    """Build a commit."""
    return CommitEvidence(id=cid, sha=sha, author=author, message=message, files=files, committed_at=None)


def deploy(
    did: str, minutes: float, service: str = "checkout", version: str = "v2.3",
    commits: tuple[CommitEvidence, ...] = (), environment: str = "production",
) -> DeployEvidence:
    """Build a deploy at `minutes` after T0."""
    return DeployEvidence(id=did, service=service, environment=environment, version=version,
                          deployed_at=at(minutes), commits=commits)


def make_pack(
    *, title: str = "Checkout errors", description: str = "", severity: str | None = "SEV-2",
    services: tuple[str, ...] = ("checkout",), resolved_after: float | None = 23,
    resolved_by: str | None = "sam", updates: tuple[UpdateEvidence, ...] = (),
    statuses: tuple[StatusEvidence, ...] | None = None, deploys: tuple[DeployEvidence, ...] = (),
    lookback: float = 120,
) -> EvidencePack:
    """Build an EvidencePack for an incident starting at T0; statuses default to opened/resolved."""
    resolved_at = at(resolved_after) if resolved_after is not None else None
    if statuses is None:
        statuses = (status("st_1", 0, "open", actor="monitor:api-health"),)
        if resolved_at is not None:
            statuses += (status("st_2", resolved_after, "resolved", actor=resolved_by),)
    facts = IncidentFacts(
        id=7, title=title, description=description, severity=severity, services=services, started_at=T0,
        resolved_at=resolved_at, resolved_by=resolved_by, created_by="sam",
    )
    return EvidencePack(
        incident=facts, window_start=at(-lookback), window_end=resolved_at or at(240),
        updates=updates, status_changes=statuses, deploys=deploys,
    )


def bad_deploy_pack(**overrides: object) -> EvidencePack:
    """Build the classic case: checkout v2.3 shipped 4 minutes before errors, then rolled back."""
    suspect_commit = commit("commit_9", "abc1234def5678", "Lower payment client timeout to 200ms",
                            author="alice", files=("src/checkout/payment_client.py",))
    other_commit = commit("commit_10", "9998887776665", "Tidy README wording", author="bob", files=("README.md",))
    args: dict = {
        "updates": (
            update("upd_1", 3, "Customers see 502 errors at checkout. Investigating."),
            update("upd_2", 12, "Rolled back checkout v2.3 to v2.2, error rate dropping."),
            update("upd_3", 20, "Root cause: the payment client timeout was lowered in v2.3, so slow "
                                "payment calls failed."),
        ),
        "deploys": (
            deploy("deploy_3", -90, version="v2.2"),
            deploy("deploy_4", -4, version="v2.3", commits=(other_commit, suspect_commit)),
            deploy("deploy_5", 11, version="v2.2"),
        ),
    }
    args.update(overrides)
    return make_pack(**args)
