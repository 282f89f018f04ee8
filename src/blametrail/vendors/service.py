"""Vendor integrations of an organization: configure (owners and admins), read, test, remove; find one from an
inbound URL; remember inbound events already handled.

Settings are stored in clear except the vendor's secret ones, which are sealed with the SecretBox and never returned;
a PUT that leaves a secret out keeps the stored one, so a page can change a channel without asking for the token.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.crypto import SecretBox
from blametrail.errors import NotFound, ValidationFailed
from blametrail.netguard import OutboundPolicy, has_userinfo
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.vendors.base import TestResult, Vendor
from blametrail.vendors.models import VendorEvent, VendorIntegration
from blametrail.vendors.registry import REGISTRY

EVENT_RETENTION = timedelta(days=7)  # replays older than this are not expected (Slack retries within minutes)


def vendor_or_404(kind: str) -> Vendor:
    """Return the vendor of this kind, or raise NotFound naming the kinds there are."""
    vendor = REGISTRY.get(kind)
    if vendor is None:
        raise NotFound(f"There is no {kind[:40]!r} integration; there are: {', '.join(REGISTRY)}.")
    return vendor


def find(*, session: Session, org_id: int, kind: str) -> VendorIntegration | None:
    return session.scalar(select(VendorIntegration).where(VendorIntegration.org_id == org_id,
                                                          VendorIntegration.kind == kind))


def get_or_404(*, session: Session, org_id: int, kind: str) -> VendorIntegration:
    vendor = vendor_or_404(kind)
    row = find(session=session, org_id=org_id, kind=kind)
    if row is None:
        raise NotFound(f"{vendor.label} is not set up for this organization.")
    return row


def list_for_org(*, session: Session, org_id: int) -> dict[str, VendorIntegration]:
    rows = session.scalars(select(VendorIntegration).where(VendorIntegration.org_id == org_id))
    return {row.kind: row for row in rows}


def _fail(name: str, msg: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {msg}", [{"loc": ["body", name], "msg": msg}])


def _clean(vendor: Vendor, data: dict, stored_secrets: dict, policy: OutboundPolicy | None) -> tuple[dict, dict]:
    if not isinstance(data, dict):
        raise ValidationFailed("Send the settings as a JSON object.", [{"loc": ["body"], "msg": "an object"}])
    unknown = sorted(set(data) - {s.name for s in vendor.settings})
    if unknown:
        names = ", ".join(s.name for s in vendor.settings)
        raise ValidationFailed(f"Unknown setting {unknown[0][:60]!r}; {vendor.label} takes: {names}.",
                               [{"loc": ["body", k[:60]], "msg": f"unknown setting; one of {names}"} for k in unknown])
    clear: dict[str, str] = {}
    sealed: dict[str, str] = dict(stored_secrets)
    errors: list[dict] = []
    for setting in vendor.settings:
        value = data.get(setting.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if setting.secret and setting.name in sealed and setting.name not in data:
                continue  # why: left out keeps the stored secret (write-only fields)
            if setting.required:
                errors.append({"loc": ["body", setting.name], "msg": f"{setting.label} is required"})
            sealed.pop(setting.name, None)
            continue
        if not isinstance(value, str):
            errors.append({"loc": ["body", setting.name], "msg": "must be text"})
            continue
        value = value.strip()
        if len(value) > setting.max_length or "\x00" in value:
            errors.append({"loc": ["body", setting.name], "msg": f"at most {setting.max_length} characters"})
            continue
        if setting.url:
            if has_userinfo(value):
                errors.append({"loc": ["body", setting.name], "msg": "credentials do not belong in the URL; "
                               "use the token fields"})
                continue
            refusal = (policy or OutboundPolicy()).refusal_for_url(value)
            if refusal:
                errors.append({"loc": ["body", setting.name], "msg": refusal})
                continue
        problem = setting.check(value) if setting.check else None
        if problem:
            errors.append({"loc": ["body", setting.name], "msg": problem})
            continue
        (sealed if setting.secret else clear)[setting.name] = value
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{vendor.label}: {first['loc'][-1]}: {first['msg']}.", errors)
    return clear, sealed


def configure(*, session: Session, actor: Actor, kind: str, data: dict, box: SecretBox, now: datetime,
              policy: OutboundPolicy | None = None) -> VendorIntegration:
    """Create or replace an integration's settings (owners and admins); secrets left out keep their stored value."""
    vendor = vendor_or_404(kind)
    require(actor.role, Action.MANAGE)
    row = find(session=session, org_id=actor.org_id, kind=kind)
    try:
        stored = secrets_of(row, box) if row is not None else {}
    except ValueError:  # why: sealed under a key that is gone; the secrets must be entered again (required ones 422)
        stored = {}
    clear, sealed = _clean(vendor, data, stored, policy)
    if row is None:
        row = VendorIntegration(org_id=actor.org_id, kind=kind, inbound_uid=secrets.token_urlsafe(24),
                                created_by=actor.label, created_at=now)
        session.add(row)
    row.settings = clear
    row.secrets_encrypted = box.encrypt(json.dumps(sealed)) if sealed else None
    row.status, row.last_error, row.updated_at = "unknown", None, now
    session.flush()
    return row


def secrets_of(row: VendorIntegration, box: SecretBox) -> dict:
    """Open the stored secrets (raises ValueError when no configured key opens them)."""
    if not row.secrets_encrypted:
        return {}
    return json.loads(box.decrypt(row.secrets_encrypted))


def config_of(row: VendorIntegration, box: SecretBox) -> dict:
    """Return settings and opened secrets together: what a vendor client is built from."""
    return {**(row.settings or {}), **secrets_of(row, box)}


def remove(*, session: Session, actor: Actor, kind: str) -> None:
    """Remove an integration (owners and admins); its inbound URLs stop working at once."""
    row = get_or_404(session=session, org_id=actor.org_id, kind=kind)
    require(actor.role, Action.MANAGE)
    session.delete(row)
    session.flush()


def run_test(*, session: Session, actor: Actor, kind: str, box: SecretBox, policy: OutboundPolicy, timeout: float,
             now: datetime) -> TestResult:
    """Ask the vendor whether it accepts our settings; the outcome is kept as the integration's status."""
    vendor = vendor_or_404(kind)
    row = get_or_404(session=session, org_id=actor.org_id, kind=kind)
    require(actor.role, Action.MANAGE)
    try:
        config = config_of(row, box)
    except ValueError:
        result = TestResult(ok=False, latency_ms=0, detail="The stored secrets cannot be opened with the configured "
                            "BLAMETRAIL_SECRET_KEY; enter them again.")
    else:
        result = vendor.test(config, policy, timeout) if vendor.test else TestResult(True, 0, "Nothing to test.")
    record_check(row, ok=result.ok, error=None if result.ok else result.detail, now=now)
    session.flush()
    return result


def record_check(row: VendorIntegration, *, ok: bool, error: str | None, now: datetime) -> None:
    """Keep the latest outcome of talking to the vendor (a Test, a sync, an inbound call) on the integration."""
    row.status = "ok" if ok else "error"
    row.last_error = db.fit(VendorIntegration.last_error, error, limit=2_000)
    row.last_checked_at = now


def by_inbound(*, session: Session, kind: str, uid: str) -> VendorIntegration | None:
    """Return the integration an inbound URL names (None for an unknown or removed one)."""
    if kind not in REGISTRY or not uid or len(uid) > 64:
        return None
    return session.scalar(select(VendorIntegration).where(VendorIntegration.inbound_uid == uid,
                                                          VendorIntegration.kind == kind))


def first_time(*, session: Session, org_id: int, kind: str, event_id: str, now: datetime) -> bool:
    """Record an inbound event id; False when it was handled before (a retry or a replay: acknowledge, do nothing)."""
    try:
        with session.begin_nested():
            session.add(VendorEvent(org_id=org_id, kind=kind, event_id=event_id[:255], received_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def purge_events(*, session: Session, now: datetime, limit: int | None = None) -> int:
    """Forget handled event ids older than the retention, at most `limit` of them (the sweep calls it)."""
    old = VendorEvent.received_at < now - EVENT_RETENTION
    if limit is not None:
        ids = list(session.scalars(select(VendorEvent.id).where(old).order_by(VendorEvent.id).limit(limit)))
        if not ids:
            return 0
        old = VendorEvent.id.in_(ids)
    result = session.execute(delete(VendorEvent).where(old).execution_options(synchronize_session=False))
    return result.rowcount or 0
