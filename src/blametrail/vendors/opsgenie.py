"""Opsgenie as an incident source: its Webhook integration's alert actions (Create, Acknowledge, AddNote, Close).

Opsgenie does not sign webhook deliveries; its Webhook integration sends custom headers instead, so the integration
page asks the admin to add `X-BlameTrail-Token: <inbound secret>`, compared in constant time (401 otherwise). The
optional API key only serves the Test button.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from urllib.parse import urlsplit

from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import tracker_http
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor
from blametrail.vendors.paging import PageEvent

DEFAULT_BASE_URL = "https://api.opsgenie.com"
TOKEN_HEADER = "x-blametrail-token"
KINDS = {"Create": "triggered", "Acknowledge": "acknowledged", "AddNote": "note", "Close": "resolved"}
SEVERITY = {"P1": "SEV-1", "P2": "SEV-2", "P3": "SEV-3", "P4": "SEV-4", "P5": "SEV-4"}
ERRORS = {401: "Opsgenie rejected the API key (HTTP 401): create an API integration key with read access.",
          403: "The Opsgenie API key may not read this account (HTTP 403)."}


def verify(header: str | None, secret: str) -> bool:
    """Tell whether the X-BlameTrail-Token header carries the inbound secret."""
    return bool(header) and hmac.compare_digest((header or "").encode(), secret.encode())


def _service(alert: dict, integration: str) -> str:
    for tag in alert.get("tags") or []:
        if isinstance(tag, str) and tag.startswith("service:"):
            return tag.split(":", 1)[1][:120]
    return str(alert.get("entity") or integration or "")[:120]


def parse(payload: dict, now: datetime) -> tuple[str, PageEvent | None]:
    """Return (a delivery id, the event) from an Opsgenie webhook payload; the event is None when ignored."""
    alert = payload.get("alert") if isinstance(payload.get("alert"), dict) else {}
    action = str(payload.get("action") or "")
    updated = alert.get("updatedAt") or alert.get("createdAt")
    # why: Opsgenie has no delivery id; action + alert + its update time (ms, ns on some accounts) names one change
    delivery = f"{action}:{alert.get('alertId')}:{updated}"
    kind = KINDS.get(action)
    if kind is None or not alert.get("alertId"):
        return delivery, None
    at = now
    if isinstance(updated, int | float) and updated > 0:
        seconds = updated / 1e9 if updated > 1e14 else updated / 1e3
        at = datetime.fromtimestamp(seconds, UTC)
    severity = SEVERITY.get(str(alert.get("priority") or ""))
    return delivery, PageEvent(kind=kind, key=str(alert["alertId"]), at=at, title=str(alert.get("message") or "")[:300],
                               service=_service(alert, str(payload.get("integrationName") or "")), severity=severity,
                               agent=str(alert.get("username") or ""), text=str(alert.get("note") or ""))


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """With an API key, read the account; without one, say how deliveries are checked."""
    watch = Stopwatch()
    if not config.get("api_key"):
        return TestResult(ok=True, latency_ms=0, detail="No API key: nothing to call. Each delivery must carry "
                                                         "the X-BlameTrail-Token header with the inbound secret.")
    base = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    try:
        answer = tracker_http.call("Opsgenie", policy, timeout, "GET", base + "/v2/account",
                                   headers={"Authorization": f"GenieKey {config['api_key']}"}, errors=ERRORS,
                                   where=urlsplit(base).netloc)
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    return TestResult(ok=True, latency_ms=watch.ms,
                      detail=f"Connected to the Opsgenie account {(answer.get('data') or {}).get('name', '?')}.")


VENDOR = Vendor(
    kind="opsgenie", label="Opsgenie",
    settings=(
        Setting("inbound_secret", "Inbound secret", secret=True,
                hint="Make up a long random string; add it in Opsgenie's Webhook integration as the custom header "
                     "X-BlameTrail-Token."),
        Setting("api_key", "API key", secret=True, required=False, hint="Optional; only for the Test button."),
        BASE_URL,
    ),
    inbound=("webhook",), default_base_url=DEFAULT_BASE_URL, test=test, docs="opsgenie",
)
