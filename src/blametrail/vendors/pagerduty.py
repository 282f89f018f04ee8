"""PagerDuty as an incident source: v3 webhook subscriptions, signed with `X-PagerDuty-Signature`.

PagerDuty signs each delivery with every active secret of the subscription: the header holds one or more
`v1=<hex HMAC-SHA256 of the raw body>` separated by commas (several while a secret is rotated); one match is enough.
Events: incident.triggered, incident.acknowledged, incident.annotated (a note), incident.resolved; others are
acknowledged and ignored. The optional REST API token only serves the Test button.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlsplit

from blametrail.clock import parse_iso
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import tracker_http
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor
from blametrail.vendors.paging import PageEvent

DEFAULT_BASE_URL = "https://api.pagerduty.com"
KINDS = {"incident.triggered": "triggered", "incident.acknowledged": "acknowledged",
         "incident.annotated": "note", "incident.resolved": "resolved"}
SEVERITY = {"P1": "SEV-1", "P2": "SEV-2", "P3": "SEV-3", "P4": "SEV-4", "P5": "SEV-4"}
ERRORS = {401: "PagerDuty rejected the API token (HTTP 401): create a REST API key (read-only is enough).",
          403: "The PagerDuty API token may not read this account (HTTP 403)."}


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Tell whether any v1= signature in X-PagerDuty-Signature is the body's HMAC-SHA256 under the secret."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(part.strip().encode(), expected.encode()) for part in (header or "").split(","))


def parse(payload: dict, now: datetime) -> tuple[str, PageEvent | None]:
    """Return (the delivery's event id, the event) from a v3 webhook payload; the event is None when ignored."""
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    event_id = str(event.get("id") or "")
    kind = KINDS.get(str(event.get("event_type") or ""))
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    if kind is None or not event_id:
        return event_id, None
    try:
        at = parse_iso(str(event.get("occurred_at"))) if event.get("occurred_at") else now
    except ValueError:
        at = now
    agent = str((event.get("agent") or {}).get("summary") or "")
    if kind == "note":
        incident = data.get("incident") or {}
        return event_id, PageEvent(kind=kind, key=str(incident.get("id") or ""), at=at, agent=agent,
                                   text=str(data.get("content") or ""), url=incident.get("html_url"))
    priority = ((data.get("priority") or {}).get("summary")) or ""
    severity = SEVERITY.get(priority) or ("SEV-2" if data.get("urgency") == "high" else None)
    return event_id, PageEvent(kind=kind, key=str(data.get("id") or ""), at=at, agent=agent,
                               title=str(data.get("title") or "")[:300],
                               service=str((data.get("service") or {}).get("summary") or "")[:120],
                               severity=severity, url=data.get("html_url"))


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """With an API token, read the account's abilities; without one, say that signatures are checked on delivery."""
    watch = Stopwatch()
    if not config.get("api_token"):
        return TestResult(ok=True, latency_ms=0, detail="No API token: nothing to call. Each delivery's "
                                                         "X-PagerDuty-Signature is checked with the signing secret.")
    base = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    try:
        answer = tracker_http.call("PagerDuty", policy, timeout, "GET", base + "/abilities",
                                   headers={"Authorization": f"Token token={config['api_token']}",
                                            "Accept": "application/vnd.pagerduty+json;version=2"},
                                   errors=ERRORS, where=urlsplit(base).netloc)
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    return TestResult(ok=True, latency_ms=watch.ms,
                      detail=f"PagerDuty accepted the API token ({len(answer.get('abilities') or [])} abilities).")


VENDOR = Vendor(
    kind="pagerduty", label="PagerDuty",
    settings=(
        Setting("signing_secret", "Webhook signing secret", secret=True,
                hint="Integrations → Generic Webhooks (v3) → your subscription → the secret shown when created."),
        Setting("api_token", "REST API key", secret=True, required=False, hint="Optional; only for the Test button."),
        BASE_URL,
    ),
    inbound=("webhook",), default_base_url=DEFAULT_BASE_URL, test=test, docs="pagerduty",
)
