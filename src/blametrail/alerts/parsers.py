"""Alert payload parsers (pure): Alertmanager v4, Grafana alerting and the generic shape → NormalizedAlert.

No clock, no database, no network: bytes in, frozen dataclasses out, or a domain error saying what is wrong.

* Malformed JSON (or a body that is not UTF-8) raises `MalformedPayload` (HTTP 400) with the position.
* A payload of the wrong shape raises `ValidationFailed` (HTTP 422) listing every offending field as
  `{"loc": ["alerts", 0, "status"], "msg": ...}`.
* Alertmanager and Grafana payloads: the documented fields are read and type-checked; fields those senders add
  in later releases are ignored (a tolerant reader: a Grafana upgrade must not break paging), but a wrong
  `version` is refused. The generic shape is ours: unknown fields, at the top or inside an alert, are refused.
* Limits: at most `MAX_ALERTS` alerts per delivery and `MAX_LABELS` labels/annotations per alert; identifiers
  (name, fingerprint, service, label keys) longer than their limit are refused; free text (summary, label and
  annotation values) is truncated; a sender's URL longer than `MAX_URL` is dropped (the generic shape refuses it).

Service: the generic `service` field, else labels `service`, `job`, `app` (first present, in that order), else the
webhook's default service. Severity: the generic `severity` field, else label `severity`, mapped by `SEVERITY_WORDS`
(critical→SEV-1, error/high/major→SEV-2, warning/medium→SEV-3, info/low/minor→SEV-4, sev1..sev4, p1..p4,
SEV-1..SEV-4), else the webhook's default severity.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from blametrail.clock import as_utc, check_range
from blametrail.errors import DomainError, ValidationFailed

MAX_ALERTS = 1000
MAX_LABELS = 100
MAX_NAME = 300
MAX_FINGERPRINT = 128
MAX_SERVICE = 120
MAX_LABEL_KEY = 200
MAX_LABEL_VALUE = 2000
MAX_SUMMARY = 4000
MAX_URL = 2000
SERVICE_LABELS = ("service", "job", "app")
SEVERITY_WORDS = {
    "critical": "SEV-1", "sev1": "SEV-1", "sev-1": "SEV-1", "p1": "SEV-1",
    "error": "SEV-2", "high": "SEV-2", "major": "SEV-2", "sev2": "SEV-2", "sev-2": "SEV-2", "p2": "SEV-2",
    "warning": "SEV-3", "warn": "SEV-3", "medium": "SEV-3", "sev3": "SEV-3", "sev-3": "SEV-3", "p3": "SEV-3",
    "info": "SEV-4", "low": "SEV-4", "minor": "SEV-4", "sev4": "SEV-4", "sev-4": "SEV-4", "p4": "SEV-4",
}
STATUSES = ("firing", "resolved")
SOURCES = {"alertmanager": "alertmanager", "grafana": "grafana", "generic_alert": "generic"}
GENERIC_TOP = frozenset({"alerts"})
GENERIC_ALERT = frozenset({"name", "status", "fingerprint", "service", "severity", "summary", "labels", "annotations",
                           "starts_at", "ends_at", "url"})
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")


class MalformedPayload(DomainError):
    slug, status, title = "malformed-json", 400, "Malformed JSON"


@dataclass(frozen=True)
class NormalizedAlert:
    """One alert as BlameTrail understands it, whatever sent it."""

    source: str  # alertmanager | grafana | generic
    name: str
    status: str  # firing | resolved
    fingerprint: str
    starts_at: datetime | None  # None: the sender did not say (generic shape only)
    ends_at: datetime | None  # set only for resolved alerts
    service: str | None
    severity: str  # SEV-1..SEV-4
    summary: str
    labels: dict = field(default_factory=dict, hash=False)
    annotations: dict = field(default_factory=dict, hash=False)
    url: str | None = None


class _Errors:
    """Collect every problem of a payload so the sender sees them all at once."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, loc: list, msg: str) -> None:
        self.items.append({"loc": loc, "msg": msg})

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        shown = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in self.items[:10])
        more = f" (and {len(self.items) - 10} more)" if len(self.items) > 10 else ""
        raise ValidationFailed(f"Invalid {what} payload: {shown}{more}.", self.items[:100])


def decode_json(body: bytes) -> object:
    """Decode a JSON body, or raise MalformedPayload saying where it breaks."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload(f"The body is not UTF-8 (invalid byte at offset {exc.start}).") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedPayload(f"Malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}.",
                               line=exc.lineno, column=exc.colno, position=exc.pos) from exc
    except RecursionError as exc:
        raise MalformedPayload("Malformed JSON: nested too deeply.") from exc


def parse_time(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp to aware UTC (nanoseconds truncated); Go's zero time means unset (None)."""
    m = _RFC3339.match(value.strip())
    if not m:
        raise ValueError("not an RFC 3339 timestamp (e.g. 2026-11-26T10:00:00Z)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"
    text += "+00:00" if zone in ("Z", "z") else zone
    return as_utc(check_range(datetime.fromisoformat(text)))


def map_severity(value: object) -> str | None:
    """Map a severity word (critical, warning, sev2, P1, SEV-3…) to SEV-1..SEV-4, or None if unknown."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    if word in ("sev-1", "sev-2", "sev-3", "sev-4"):
        return word.upper()
    return SEVERITY_WORDS.get(word)


def service_from(labels: dict) -> str | None:
    """Return the service named by the labels (service, job, app — the first present), or None."""
    for key in SERVICE_LABELS:
        value = labels.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def derive_fingerprint(labels: dict, name: str | None = None) -> str:
    """Return a stable fingerprint from the sorted labels (and the alert name when it is not a label)."""
    material = dict(labels)
    if name is not None:
        material.setdefault("alertname", name)
    canonical = json.dumps(sorted(material.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _string_map(raw: object, loc: list, errors: _Errors) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(loc, "must be an object of string values")
        return {}
    if len(raw) > MAX_LABELS:
        errors.add(loc, f"at most {MAX_LABELS} entries (got {len(raw)})")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if len(key) > MAX_LABEL_KEY:
            errors.add([*loc, key[:40]], f"key longer than {MAX_LABEL_KEY} characters")
        elif not isinstance(value, str):
            errors.add([*loc, key], "must be a string")
        else:
            out[key] = value[:MAX_LABEL_VALUE]
    return out


def _opt_str(raw: dict, key: str, loc: list, errors: _Errors, *, limit: int | None = None,
             truncate: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add([*loc, key], "must be a string")
        return None
    if limit is not None and len(value) > limit:
        if truncate:
            return value[:limit]
        errors.add([*loc, key], f"longer than {limit} characters")
        return None
    return value


def _time(raw: dict, key: str, loc: list, errors: _Errors) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add([*loc, key], "must be an RFC 3339 timestamp string")
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        errors.add([*loc, key], str(exc))
        return None


def _url(value: str | None) -> str | None:
    return value if value and len(value) <= MAX_URL else None


def _summary(annotations: dict) -> str:
    for key in ("summary", "description", "message"):
        if annotations.get(key):
            return annotations[key][:MAX_SUMMARY]
    return ""


def _alert_list(payload: dict, errors: _Errors) -> list:
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        errors.add(["alerts"], "required: a list of alerts")
        return []
    if len(alerts) > MAX_ALERTS:
        errors.add(["alerts"], f"at most {MAX_ALERTS} alerts per delivery (got {len(alerts)}); split the batch")
        return []
    return alerts


def _sender_alert(source: str, raw: object, i: int, errors: _Errors, default_service: str | None,
                  default_severity: str) -> NormalizedAlert | None:
    """Read one alert of the shape Alertmanager and Grafana share."""
    loc: list = ["alerts", i]
    if not isinstance(raw, dict):
        errors.add(loc, "must be an object")
        return None
    before = len(errors.items)
    status = raw.get("status")
    if status not in STATUSES:
        errors.add([*loc, "status"], "must be 'firing' or 'resolved'")
    labels = _string_map(raw.get("labels"), [*loc, "labels"], errors)
    annotations = _string_map(raw.get("annotations"), [*loc, "annotations"], errors)
    if "startsAt" not in raw:
        errors.add([*loc, "startsAt"], "required")
    starts_at = _time(raw, "startsAt", loc, errors)
    ends_at = _time(raw, "endsAt", loc, errors)
    url = _opt_str(raw, "generatorURL", loc, errors)
    fingerprint = _opt_str(raw, "fingerprint", loc, errors, limit=MAX_FINGERPRINT)
    name = labels.get("alertname") or labels.get("__alert_rule_title__") or "unnamed alert"
    if len(name) > MAX_NAME:
        errors.add([*loc, "labels", "alertname"], f"longer than {MAX_NAME} characters")
    service = service_from(labels) or default_service
    if service is not None and len(service) > MAX_SERVICE:
        errors.add([*loc, "labels"], f"service name longer than {MAX_SERVICE} characters")
    if len(errors.items) > before:
        return None
    if status == "resolved" and ends_at is not None and starts_at is not None and ends_at < starts_at:
        ends_at = starts_at
    return NormalizedAlert(
        source=source, name=name, status=status, fingerprint=fingerprint or derive_fingerprint(labels),
        starts_at=starts_at, ends_at=ends_at if status == "resolved" else None, service=service,
        severity=map_severity(labels.get("severity")) or default_severity, summary=_summary(annotations),
        labels=labels, annotations=annotations, url=_url(url),
    )


def parse_alertmanager(payload: object, *, default_service: str | None, default_severity: str) -> list[NormalizedAlert]:
    """Read an Alertmanager webhook payload (version "4")."""
    errors = _Errors()
    if not isinstance(payload, dict):
        errors.add([], "the payload must be a JSON object")
        errors.raise_if_any("Alertmanager")
    if payload.get("version") != "4":
        errors.add(["version"], f"must be \"4\" (Alertmanager webhook payload version 4), got {payload.get('version')!r}")
        errors.raise_if_any("Alertmanager")
    for key in ("groupKey", "receiver", "externalURL"):
        if key in payload and payload[key] is not None and not isinstance(payload[key], str):
            errors.add([key], "must be a string")
    if "status" in payload and payload["status"] not in STATUSES:
        errors.add(["status"], "must be 'firing' or 'resolved'")
    alerts = [_sender_alert("alertmanager", raw, i, errors, default_service, default_severity)
              for i, raw in enumerate(_alert_list(payload, errors))]
    errors.raise_if_any("Alertmanager")
    return [a for a in alerts if a is not None]


def parse_grafana(payload: object, *, default_service: str | None, default_severity: str) -> list[NormalizedAlert]:
    """Read a Grafana (unified) alerting webhook payload."""
    errors = _Errors()
    if not isinstance(payload, dict):
        errors.add([], "the payload must be a JSON object")
        errors.raise_if_any("Grafana")
    if "alerts" not in payload and ("evalMatches" in payload or "ruleId" in payload):
        errors.add(["alerts"], "this is Grafana's legacy alerting format; use a unified-alerting webhook contact point")
        errors.raise_if_any("Grafana")
    if "version" in payload and payload["version"] != "1":
        errors.add(["version"], f"must be \"1\" (Grafana alerting webhook), got {payload['version']!r}")
        errors.raise_if_any("Grafana")
    if "status" in payload and payload["status"] not in STATUSES:
        errors.add(["status"], "must be 'firing' or 'resolved'")
    alerts = [_sender_alert("grafana", raw, i, errors, default_service, default_severity)
              for i, raw in enumerate(_alert_list(payload, errors))]
    errors.raise_if_any("Grafana")
    return [a for a in alerts if a is not None]


def _generic_alert(raw: object, i: int, errors: _Errors, default_service: str | None,
                   default_severity: str) -> NormalizedAlert | None:
    loc: list = ["alerts", i]
    if not isinstance(raw, dict):
        errors.add(loc, "must be an object")
        return None
    before = len(errors.items)
    for key in sorted(set(raw) - GENERIC_ALERT):
        errors.add([*loc, key], f"unknown field (allowed: {', '.join(sorted(GENERIC_ALERT))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.add([*loc, "name"], "required: a non-empty string")
    elif len(name) > MAX_NAME:
        errors.add([*loc, "name"], f"longer than {MAX_NAME} characters")
    status = raw.get("status")
    if status not in STATUSES:
        errors.add([*loc, "status"], "required: 'firing' or 'resolved'")
    fingerprint = _opt_str(raw, "fingerprint", loc, errors, limit=MAX_FINGERPRINT)
    if fingerprint is not None and not fingerprint.strip():
        errors.add([*loc, "fingerprint"], "must not be empty")
    service = _opt_str(raw, "service", loc, errors, limit=MAX_SERVICE)
    severity_raw = _opt_str(raw, "severity", loc, errors)
    severity = map_severity(severity_raw) if severity_raw is not None else None
    if severity_raw is not None and severity is None:
        errors.add([*loc, "severity"], "unknown severity: use SEV-1..SEV-4, critical, error, warning or info")
    summary = _opt_str(raw, "summary", loc, errors, limit=MAX_SUMMARY, truncate=True)
    labels = _string_map(raw.get("labels"), [*loc, "labels"], errors)
    annotations = _string_map(raw.get("annotations"), [*loc, "annotations"], errors)
    starts_at = _time(raw, "starts_at", loc, errors)
    ends_at = _time(raw, "ends_at", loc, errors)
    url = _opt_str(raw, "url", loc, errors, limit=MAX_URL)
    service = (service or "").strip() or service_from(labels) or default_service
    if service is not None and len(service) > MAX_SERVICE:
        errors.add([*loc, "labels"], f"service name longer than {MAX_SERVICE} characters")
    if len(errors.items) > before:
        return None
    name = name.strip()
    if status == "resolved" and ends_at is not None and starts_at is not None and ends_at < starts_at:
        errors.add([*loc, "ends_at"], "before starts_at")
        return None
    return NormalizedAlert(
        source="generic", name=name, status=status,
        fingerprint=fingerprint.strip() if fingerprint else derive_fingerprint(
            {**labels, **({"service": service} if service else {})}, name),
        starts_at=starts_at, ends_at=ends_at if status == "resolved" else None, service=service,
        severity=severity or map_severity(labels.get("severity")) or default_severity,
        summary=summary if summary is not None else _summary(annotations), labels=labels, annotations=annotations,
        url=url,
    )


def parse_generic(payload: object, *, default_service: str | None, default_severity: str) -> list[NormalizedAlert]:
    """Read BlameTrail's generic alert shape (docs/webhooks.md); unknown fields are refused."""
    errors = _Errors()
    if not isinstance(payload, dict):
        errors.add([], "the payload must be a JSON object like {\"alerts\": [...]}")
        errors.raise_if_any("generic alert")
    for key in sorted(set(payload) - GENERIC_TOP):
        errors.add([key], "unknown field (the body has only 'alerts')")
    alerts = [_generic_alert(raw, i, errors, default_service, default_severity)
              for i, raw in enumerate(_alert_list(payload, errors))]
    errors.raise_if_any("generic alert")
    return [a for a in alerts if a is not None]


PARSERS = {"alertmanager": parse_alertmanager, "grafana": parse_grafana, "generic_alert": parse_generic}


def parse(kind: str, body: bytes, *, default_service: str | None, default_severity: str) -> list[NormalizedAlert]:
    """Decode and read a delivery of one webhook kind into normalized alerts."""
    return PARSERS[kind](decode_json(body), default_service=default_service, default_severity=default_severity)
