"""Slack: a bot token for the Web API (through the official slack_sdk) and a signing secret for inbound requests.

Every call goes to the configured base URL (Slack's cloud by default, a local wire-protocol server in the tests).
slack_sdk opens its own connections (urllib), so the outbound guard vets the host first, as for the Datadog SDK.
"""

from __future__ import annotations

import urllib.error
from urllib.parse import urlsplit

from blametrail.netguard import OutboundPolicy, redact_userinfo
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor

DEFAULT_BASE_URL = "https://slack.com/api/"

# Slack's own error codes, in the words a person setting it up needs
ERRORS = {
    "invalid_auth": "Slack rejected the bot token (invalid_auth): copy the Bot User OAuth Token (xoxb-…) again.",
    "not_authed": "Slack received no bot token (not_authed).",
    "account_inactive": "The Slack app's token belongs to a deleted user or workspace (account_inactive).",
    "token_revoked": "The bot token was revoked in Slack (token_revoked): reinstall the app to get a new one.",
    "token_expired": "The bot token expired (token_expired): reinstall the app or turn off token rotation.",
    "missing_scope": "The Slack app lacks a scope it needs (missing_scope): add it and reinstall the app.",
    "channel_not_found": "Slack has no such channel, or the bot is not in it (channel_not_found): invite the bot.",
    "not_in_channel": "The bot is not in that channel (not_in_channel): /invite the app in the channel.",
    "ratelimited": "Slack is rate limiting these calls (ratelimited).",
}


def api_url(config: dict) -> str:
    base = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/"
    return base if base.endswith("/api/") else base + "api/"


def client(config: dict, policy: OutboundPolicy, timeout: float):
    """Return a slack_sdk WebClient for this configuration, after the outbound guard vetted its host."""
    from slack_sdk import WebClient

    url = api_url(config)
    policy.check_url(url, resolve=True)
    return WebClient(token=config.get("bot_token") or None, base_url=url, timeout=max(1, int(timeout)),
                     retry_handlers=[])


def explain(exc: BaseException, where: str) -> str:
    """Return a plain-words sentence for a failed Slack call."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        response = exc.response
        if response.status_code == 429:
            retry = response.headers.get("Retry-After") or response.headers.get("retry-after") or "?"
            return f"Slack is rate limiting these calls (HTTP 429): it asks to wait {retry} s."
        code = (response.data or {}).get("error") if isinstance(response.data, dict) else None
        if code:
            return ERRORS.get(code, f"Slack refused the call ({code}).")
        return f"Slack answered HTTP {response.status_code} without saying why."
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return f"Slack at {where} did not answer in time."
    if isinstance(exc, urllib.error.URLError):
        return f"Could not reach Slack at {where}: {exc.reason}."
    return f"Could not talk to Slack at {where}: {exc}"


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """Call auth.test with the bot token: it names the workspace and bot when the token works."""
    from slack_sdk.errors import SlackApiError

    where = redact_userinfo(urlsplit(api_url(config)).netloc)
    watch = Stopwatch()
    try:
        answer = client(config, policy, timeout).auth_test()
    except (SlackApiError, OSError, urllib.error.URLError) as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=explain(exc, where))
    team, user = answer.get("team") or "?", answer.get("user") or "?"
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Connected to the {team} workspace as @{user}.")


VENDOR = Vendor(
    kind="slack", label="Slack",
    settings=(
        Setting("bot_token", "Bot User OAuth Token", secret=True, hint="xoxb-… from OAuth & Permissions"),
        Setting("signing_secret", "Signing secret", secret=True, hint="Basic Information → App Credentials"),
        Setting("notify_channel", "Channel for postmortem notices", required=False, max_length=80,
                hint="A channel id such as C0123456789; leave empty for no notices."),
        BASE_URL,
    ),
    inbound=("events", "commands"), default_base_url=DEFAULT_BASE_URL, test=test, docs="slack",
)
