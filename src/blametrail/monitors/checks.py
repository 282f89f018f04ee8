"""One HTTP check: the pure verdict on a response, and the httpx call that maps failures to error kinds."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from blametrail.netguard import blocked_in, redact_userinfo

ERROR_KINDS = ("timeout", "connect", "dns", "tls", "status", "keyword", "too_many_redirects", "blocked", "other")
MAX_BODY_BYTES = 1_048_576  # the keyword is looked for in the first 1 MB only
MAX_REDIRECTS = 5
_MAX_MESSAGE = 500
_DNS_WORDS = ("name or service not known", "nodename nor servname", "getaddrinfo failed",
              "temporary failure in name resolution", "no address associated", "name resolution")


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs to know about its monitor (a snapshot taken when the check was claimed)."""

    monitor_id: int
    url: str
    method: str = "GET"
    expected_statuses: tuple[int, ...] = ()
    keyword: str | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check: ok, or the kind of failure with a short message for people."""

    ok: bool
    status_code: int | None = None
    latency_ms: int | None = None
    error_kind: str | None = None
    error: str | None = None


def status_expected(status_code: int, expected: tuple[int, ...] | list[int]) -> bool:
    """Tell whether a status code counts as up (an empty list means any 2xx or 3xx)."""
    return status_code in expected if expected else 200 <= status_code < 400


def _expected_words(expected: tuple[int, ...] | list[int]) -> str:
    return ", ".join(str(c) for c in expected) if expected else "2xx or 3xx"


def evaluate(
    status_code: int, body_text: str | None, expected: tuple[int, ...] | list[int], keyword: str | None,
) -> tuple[bool, str | None, str | None]:
    """Judge a response: return (ok, error_kind, error) from its status code and (partial) body."""
    if not status_expected(status_code, expected):
        return False, "status", f"Unexpected status {status_code} (expected {_expected_words(expected)})."
    if keyword and (body_text is None or keyword not in body_text):
        return False, "keyword", f"Keyword {_short(keyword, 80)!r} not found in the response body."
    return True, None, None


def _short(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(url: str) -> str:
    try:
        u = httpx.URL(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        return f"{u.host}:{port}"
    except Exception:  # why: an unparseable URL must still produce a message
        return url


def classify(exc: BaseException, target: CheckTarget) -> tuple[str, str]:
    """Map an exception raised by a check to (error_kind, short human message)."""
    blocked = blocked_in(exc)
    if blocked is not None:  # the SSRF guard refused the URL or a redirect hop; nothing was sent there
        return "blocked", _short(str(blocked))
    where = _where(target.url)
    chain = list(_chain(exc))
    text = " | ".join(str(e) for e in chain).lower()
    if isinstance(exc, httpx.TooManyRedirects):
        start = _short(redact_userinfo(target.url), 200)
        return "too_many_redirects", f"More than {MAX_REDIRECTS} redirects starting at {start}."
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout", f"Could not connect to {where} within {target.timeout_seconds:g} s."
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"No complete response from {where} within {target.timeout_seconds:g} s."
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None or "certificate_verify_failed" in text or "[ssl" in text:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls or exc)
        return "tls", _short(f"TLS handshake with {where} failed: {reason}.")
    if any(isinstance(e, socket.gaierror) for e in chain) or any(w in text for w in _DNS_WORDS):
        host = where.rsplit(":", 1)[0]
        return "dns", _short(f"DNS lookup failed for {host}: {exc}.")
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connect", f"Connection refused by {where}."
    if isinstance(exc, httpx.ConnectError):
        return "connect", _short(f"Could not connect to {where}: {exc}.")
    if isinstance(exc, httpx.RemoteProtocolError):
        return "other", _short(f"{where} closed the connection or sent an invalid response: {exc}.")
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "other", _short(f"The connection to {where} broke: {exc}.")
    return "other", _short(f"{type(exc).__name__}: {exc}")


def _read_text(response: httpx.Response, deadline: float) -> str:
    """Read at most MAX_BODY_BYTES of the body before the deadline and decode it."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
        if time.perf_counter() > deadline:
            raise httpx.ReadTimeout("body not read before the check's timeout")
    data = b"".join(chunks)[:MAX_BODY_BYTES]
    return data.decode(response.encoding or "utf-8", errors="replace")


def run_check(client: httpx.Client, target: CheckTarget) -> CheckOutcome:
    """Run one check with the shared client; never raises (every failure becomes an error kind)."""
    start = time.perf_counter()
    deadline = start + target.timeout_seconds
    try:
        with client.stream(target.method, target.url, timeout=httpx.Timeout(target.timeout_seconds)) as response:
            latency_ms = int((time.perf_counter() - start) * 1000)  # time to the final response's headers
            body = None
            if target.keyword and target.method != "HEAD" and status_expected(response.status_code,
                                                                               target.expected_statuses):
                body = _read_text(response, deadline)
            ok, kind, error = evaluate(response.status_code, body, target.expected_statuses, target.keyword)
            return CheckOutcome(ok=ok, status_code=response.status_code, latency_ms=latency_ms, error_kind=kind,
                                error=error)
    except Exception as exc:  # why: one broken check must never take the scheduler down
        kind, message = classify(exc, target)
        return CheckOutcome(ok=False, error_kind=kind, error=message)
