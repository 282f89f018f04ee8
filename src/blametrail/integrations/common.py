"""What every connector shares: signals, limits, `$service` templating, point caps and HTTP error messages."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal

import httpx

from blametrail import netguard, safejson
from blametrail.errors import UpstreamError
from blametrail.netguard import DEFAULT_POLICY, OutboundPolicy, policy_from, redact_userinfo

_SERVICE = re.compile(r"\$\{service\}|\$service\b")
LIMIT_OPTIONS = ("timeout_seconds", "max_series", "max_points", "max_lines")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class Signal:
    """One query a connection runs for the services it covers (`services=("*",)` covers every service)."""

    name: str
    kind: Literal["metric", "log"]
    query: str
    services: tuple[str, ...] = ("*",)
    unit: str = ""

    @property
    def templated(self) -> bool:
        """Tell whether the query depends on the service (`$service` or `${service}`)."""
        return bool(_SERVICE.search(self.query))

    def covers(self, service: str) -> bool:
        """Tell whether this signal applies to a service."""
        return "*" in self.services or service in self.services

    @classmethod
    def from_stored(cls, raw: dict) -> Signal:
        """Build a signal from its stored JSON form (a CloudWatch spec may be stored as an object)."""
        query = raw.get("query", "")
        if not isinstance(query, str):
            query = json.dumps(query, sort_keys=True)
        return cls(name=str(raw.get("name", "")), kind=raw.get("kind", "metric"), query=query,
                   services=tuple(raw.get("services") or ("*",)), unit=str(raw.get("unit") or ""))


@dataclass(frozen=True)
class Limits:
    """How long one request may take and how much data one signal may bring back."""

    timeout_seconds: float = 10.0
    max_series: int = 50  # per signal and service
    max_points: int = 1000  # per series
    max_lines: int = 5000  # per signal and service
    outbound: OutboundPolicy = DEFAULT_POLICY  # which addresses requests may reach (the SSRF guard)

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """Return the operator's defaults (BLAMETRAIL_CONNECTOR_*, BLAMETRAIL_OUTBOUND_*)."""
        return cls(timeout_seconds=settings.connector_timeout_seconds, max_series=settings.connector_max_series,
                   max_points=settings.connector_max_points, max_lines=settings.connector_max_log_lines,
                   outbound=policy_from(settings))

    def with_options(self, options: dict | None) -> Limits:
        """Return these limits with a connection's own overrides applied."""
        given = {k: v for k, v in (options or {}).items() if k in LIMIT_OPTIONS and v is not None}
        return replace(self, **given) if given else self


@dataclass(frozen=True)
class ConnectorConfig:
    """Everything a connector needs, decrypted: built from a Connection row by `connector_for`."""

    name: str
    provider: str
    endpoint: str
    credentials: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    kinds: frozenset[str] = frozenset()  # signal kinds configured, so `test()` checks what will be used


def escape(value: str) -> str:
    """Escape a value for a double-quoted string in PromQL, LogQL or a Datadog query."""
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))


def render(query: str, service: str | None) -> str:
    """Substitute `$service` / `${service}` in a query with the service name, escaped for the query language."""
    if service is None:
        return query
    value = escape(service)
    return _SERVICE.sub(lambda _m: value, query)


def substitute(value, service: str | None):
    """Substitute `$service` in every string of a JSON structure, unescaped (CloudWatch specs)."""
    if service is None:
        return value
    if isinstance(value, str):
        return _SERVICE.sub(lambda _m: service, value)
    if isinstance(value, list):
        return [substitute(v, service) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, service) for k, v in value.items()}
    return value


def utc_from_seconds(value: float) -> datetime:
    """Return the aware UTC datetime of a Unix timestamp in seconds."""
    return datetime.fromtimestamp(value, UTC)


def finite(value) -> float | None:
    """Return a float, or None for values a chart cannot show (NaN, ±Inf, null, junk)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def cap_points(points: list[tuple[datetime, float]], max_points: int) -> tuple[tuple[datetime, float], ...]:
    """Return at most `max_points` points, averaging neighbours into buckets so peaks' levels survive roughly."""
    points = sorted(points, key=lambda p: p[0])
    if len(points) <= max_points or max_points <= 0:
        return tuple(points)
    size = math.ceil(len(points) / max_points)
    out = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        out.append((bucket[0][0], sum(v for _, v in bucket) / len(bucket)))
    return tuple(out)


def cap_series(series: list, max_series: int) -> list:
    """Keep the `max_series` series with the highest peak (why: the spiking ones are the evidence)."""
    if len(series) <= max_series:
        return series
    return sorted(series, key=lambda s: max((v for _, v in s.points), default=float("-inf")), reverse=True)[:max_series]


def step_for(start: datetime, end: datetime, step_seconds: int, max_points: int) -> int:
    """Return a step no finer than asked and coarse enough to stay under `max_points` per series."""
    span = max(1.0, (end - start).total_seconds())
    return max(1, int(step_seconds), math.ceil(span / max(1, max_points)))


def seconds(value: float) -> str:
    """Format a duration for people: 10 → "10", 0.5 → "0.5"."""
    return f"{value:g}"


# --- HTTP error messages (httpx-based connectors) -------------------------------------------------------------


def server_text(response: httpx.Response, limit: int = 200) -> str:
    """Return a rejected query's short reason: a JSON `error`/`errors`/`message`/`detail` field or a plain-text line.

    `status_message` shows it for 400/422 only (what an admin needs to fix a query, e.g. Loki's LogQL parse error);
    every other status shows its standard reason phrase. Why: with private ranges allowed, an endpoint may be any
    internal service, whose error page (stack traces, configuration, tokens) must not land in `last_test_error` or
    evidence, which the whole organization reads.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    text = ""
    if isinstance(body, dict):
        for key in ("error", "errors", "message", "detail"):
            value = body.get(key)
            if value:
                text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
                break
    elif body is None and response.headers.get("content-type", "").startswith("text/plain"):
        text = response.text.strip().split("\n", 1)[0]
    return sanitize(text, limit, secrets=_sent_credentials(response))


def sanitize(text: str, limit: int = 200, *, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Return text fit for a stored error: given secrets redacted, control characters dropped, one short line."""
    for secret in secrets:  # why: some proxies echo the request's Authorization in their error
        text = text.replace(secret, "[REDACTED]")
    text = "".join(c if c.isprintable() else " " for c in str(text))
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def reason_phrase(status: int) -> str:
    """Return the standard reason phrase of an HTTP status ("Internal Server Error"), not the server's own words."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no reason given"


def _sent_credentials(response: httpx.Response) -> list[str]:
    """Return the credentials the request carried (Authorization and key headers, Basic decoded), longest first."""
    try:
        headers = response.request.headers
    except RuntimeError:  # a response built without a request
        return []
    found: set[str] = set()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered != "authorization" and not any(w in lowered for w in ("key", "token", "secret", "password")):
            continue
        scheme, _, credential = value.strip().partition(" ")
        credential = credential.strip() or scheme
        found.add(credential)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
            found |= {decoded, decoded.partition(":")[2]}
    return sorted((f for f in found if len(f) >= 4), key=len, reverse=True)


def retry_after(headers, default: str = "later") -> str:
    """Return "after N s" from Retry-After (seconds or an HTTP date) or X-RateLimit-Reset, else "later"."""
    raw = headers.get("retry-after") or headers.get("x-ratelimit-reset")
    if raw:
        raw = str(raw).strip()
        if raw.isdigit():
            wait = int(raw)
            if wait > 1_000_000_000:  # why: some servers send the reset moment as a Unix time, not a delay
                wait = max(0, wait - int(datetime.now(UTC).timestamp()))
            return f"after {wait} s"
        try:
            when = parsedate_to_datetime(raw)
            return f"after {max(0, int((when - datetime.now(UTC)).total_seconds()))} s"
        except (TypeError, ValueError):
            pass
    return default


def status_message(what: str, status: int, text: str, headers=None, *, bad_query_statuses=(400, 422)) -> str:
    """Return the human message for an HTTP error status: the status and its standard reason, never the body.

    Only a rejected query (400/422) carries the server's own short reason (`text`, from `server_text`), which is
    what tells an admin how to fix the query.
    """
    headers = headers or {}
    if status == 401:
        return f"{what} rejected the credentials (401): check the token, API key or username/password"
    if status == 403:
        return f"{what} answered forbidden (403): check the token's scopes"
    if status == 429:
        return f"{what} rate-limited the request (429); retry {retry_after(headers)}"
    if status in bad_query_statuses:
        return f"{what} rejected the query ({status}): {text or reason_phrase(status)}"
    if status == 404:
        return f"{what} answered 404 not found: check the URL (the API path is added for you)"
    if status in (502, 503, 504):
        return f"{what} is unavailable ({status}): {reason_phrase(status)}; try again later"
    return f"{what} failed with HTTP {status}: {reason_phrase(status)}"


_PUBLIC_KINDS = (  # (words in a connector's message, what people without admin rights see); the first match wins
    (" rejected the credentials", "the backend rejected the credentials"),
    (" answered forbidden", "the backend refused access"), (" denied access", "the backend refused access"),
    (" rate-limited the request", "the backend rate-limited the request"),
    (" rejected the query", "the backend rejected the query"),
    (" not found", "the backend answered not found"), (" has no such resource", "the backend answered not found"),
    (" is unavailable", "the backend is unavailable"), (" failed with HTTP", "the backend answered an error"),
    (" timed out", "the backend did not answer in time"), (" could not be reached", "the backend could not be reached"),
    (" redirected to", "the backend answered with a redirect"),
    (" cannot be decrypted", "the stored credentials cannot be decrypted"),
)
_PUBLIC_STATUS = re.compile(r" \((\d{3})\)[:;]| failed with HTTP (\d{3})\b| answered (\d{3}) not found")


def public_error(message: str | None) -> str | None:
    """Return what non-admins see of a stored connector error: the kind of failure and the HTTP status, no details."""
    if not message:
        return message
    kind = next((said for words, said in _PUBLIC_KINDS if words in message), "the test failed")
    found = _PUBLIC_STATUS.search(message)
    status = int(next(g for g in found.groups() if g)) if found else None
    where = f" (HTTP {status} {reason_phrase(status)})" if status else ""
    return f"{kind[:1].upper()}{kind[1:]}{where}; an owner or admin can see the details."


def transport_message(what: str, exc: Exception, timeout: float) -> str:
    """Return the human message for a request that got no HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{what} timed out after {seconds(timeout)} s"
    reason = sanitize(str(exc) or type(exc).__name__)
    lowered = reason.lower()
    if "refused" in lowered:
        reason = "connection refused"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        reason = "the host name does not resolve"
    elif "certificate" in lowered or "ssl" in lowered:
        reason = f"TLS failed ({reason}); check the certificate or the http/https scheme"
    return f"{what} could not be reached: {reason}"


class UpstreamStatusError(UpstreamError):
    """An UpstreamError for an HTTP error answer, keeping the status for callers that branch on it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def redirect_message(what: str, response: httpx.Response, outbound: OutboundPolicy | None = None) -> str:
    """Return the human message for a redirect (connectors never follow one), naming the guard's refusal if any."""
    target = sanitize(redact_userinfo(str(response.url.join(response.headers.get("location", "")))), 300)
    message = (f"{what} redirected to {target} (HTTP {response.status_code}); BlameTrail does not follow redirects "
               "from observability backends: set the endpoint to the final URL")
    refusal = (outbound or DEFAULT_POLICY).refusal_for_url(target)
    return f"{message}. {refusal}" if refusal else message


def request_json(client: httpx.Client, method: str, url: str, *, what: str, timeout: float,
                 bad_query_statuses=(400, 422), outbound: OutboundPolicy | None = None, **kwargs) -> dict:
    """Send a request and return its JSON body, or raise UpstreamError with an actionable message."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise UpstreamError(transport_message(what, exc, timeout)) from exc
    if response.is_redirect:
        raise UpstreamStatusError(redirect_message(what, response, outbound), response.status_code)
    if response.status_code >= 400:
        raise UpstreamStatusError(status_message(what, response.status_code, server_text(response), response.headers,
                                                 bad_query_statuses=bad_query_statuses), response.status_code)
    try:
        body = response.json()
        if _SURROGATE_ESCAPE.search(response.content):  # why: the database cannot store such text (see db.py)
            body = safejson.scrub(body)
    except RecursionError as exc:
        raise UpstreamError(f"{what} answered with JSON nested too deeply to read") from exc
    except ValueError as exc:
        raise UpstreamError(f"{what} answered with something that is not JSON (HTTP {response.status_code}): "
                            "check that the URL points at the API") from exc
    if not isinstance(body, dict):
        raise UpstreamError(f"{what} answered with unexpected JSON: check that the URL points at the API")
    return body


def http_client(config: ConnectorConfig, headers: dict | None = None) -> httpx.Client:
    """Return an SSRF-guarded httpx client with the connection's auth (bearer token or basic), timeout and TLS choice."""
    creds = config.credentials
    auth = None
    all_headers = {"User-Agent": "blametrail", "Accept": "application/json", **(headers or {})}
    if creds.get("token"):
        all_headers["Authorization"] = f"Bearer {creds['token']}"
    elif creds.get("username") or creds.get("password"):
        auth = httpx.BasicAuth(creds.get("username", ""), creds.get("password", ""))
    # why: the guarded client vets every address it connects to, so a connection cannot reach metadata endpoints
    return netguard.client(config.limits.outbound, timeout=config.limits.timeout_seconds, headers=all_headers,
                           auth=auth, verify=bool(config.options.get("verify_tls", True)), follow_redirects=False)


def api_url(endpoint: str, path: str) -> str:
    """Join a base URL and an API path."""
    return endpoint.rstrip("/") + path
