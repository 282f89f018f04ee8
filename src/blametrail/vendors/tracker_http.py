"""What the issue-tracker clients share: one guarded httpx call that turns every failure into plain words.

The trackers are hand-written on httpx rather than their SDKs: PyGithub and the Atlassian libraries are built on
`requests`, which the outbound guard (netguard's httpx transport, connecting only to vetted addresses) cannot sit
under, and Linear publishes no Python SDK; each tracker needs four or five documented calls.
"""

from __future__ import annotations

import httpx

from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy, blocked_in, client


def explain(label: str, exc: BaseException, where: str, errors: dict[int, str]) -> str:
    """Say in plain words why a call to a tracker failed."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429 or (status == 403 and exc.response.headers.get("x-ratelimit-remaining") == "0"):
            wait = exc.response.headers.get("Retry-After") or exc.response.headers.get("x-ratelimit-reset") or "?"
            return f"{label} is rate limiting these calls (HTTP {status}): it asks to wait {wait} s."
        return errors.get(status, f"{label} answered HTTP {status}.")
    blocked = blocked_in(exc)
    if blocked is not None:
        return str(blocked)
    if isinstance(exc, httpx.TimeoutException):
        return f"{label} at {where} did not answer in time."
    if isinstance(exc, ValueError):
        return f"{label} at {where} answered something that is not JSON."
    return f"Could not reach {label} at {where}: {exc.__class__.__name__}."


def call(label: str, policy: OutboundPolicy, timeout: float, method: str, url: str, *, headers: dict,
         errors: dict[int, str], where: str, **kwargs) -> dict:
    """Make one request through the outbound guard; return its JSON or raise UpstreamError in plain words."""
    policy.check_url(url)
    try:
        with client(policy, timeout=timeout, headers=headers) as http:
            response = http.request(method, url, **kwargs)
            response.raise_for_status()
            return response.json() if response.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamError(explain(label, exc, where, errors)) from exc
