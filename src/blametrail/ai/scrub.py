"""Secret scrubbing: remove credentials from evidence text before anything leaves the machine."""

from __future__ import annotations

import re

_REDACTED = "[REDACTED:{}]"
_URLSAFE = r"A-Za-z0-9_\-"

# Order matters: specific shapes first, so a JWT inside a bearer header is reported as a JWT.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        re.S)),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")),
    ("anthropic_key", re.compile(rf"\bsk-ant-[{_URLSAFE}]{{10,}}")),
    ("openai_key", re.compile(rf"\bsk-(?:proj-|svcacct-|admin-)?[{_URLSAFE}]{{16,}}")),
    ("stripe_key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("slack_token", re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("blametrail_token", re.compile(rf"\bbt_[{_URLSAFE}]{{16,}}")),
    ("webhook_secret", re.compile(rf"\bwhsec_[{_URLSAFE}+/=]{{16,}}")),
    # scheme://user:password@host — keep the scheme, user and host (useful), drop the password
    ("password", re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)")),
    ("bearer_token", re.compile(r"(?P<keep>\b(?:[Bb]earer|[Tt]oken|[Bb]asic)\s+)(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)")),
    # key=value and "key": "value" pairs whose key names a credential
    ("secret", re.compile(
        r"(?P<keep>(?<![A-Za-z0-9])[\"']?[A-Za-z0-9_.\-]*?(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|"
        r"access[_\-]?key|private[_\-]?key|client[_\-]?secret)[A-Za-z0-9_.\-]*[\"']?\s*=\s*[\"']?)"
        r"(?P<secret>(?!\[REDACTED)[^\s\"',;&}\]]+)", re.I)),
    ("secret", re.compile(
        r"(?P<keep>[\"'][A-Za-z0-9_.\-]*?(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|"
        r"access[_\-]?key|private[_\-]?key|client[_\-]?secret)[A-Za-z0-9_.\-]*[\"']\s*:\s*[\"'])"
        r"(?P<secret>(?!\[REDACTED)[^\"']+)", re.I)),
    ("secret", re.compile(
        r"(?P<keep>\b(?:password|passwd|secret|api[_\-]?key|token)\s*:\s*)"
        r"(?P<secret>(?!\[REDACTED)(?=[^\s]*\d)[^\s\"',;&}\]]{8,})", re.I)),
)


def _replace(kind: str):
    def sub(match: re.Match[str]) -> str:
        groups = match.groupdict()
        if "keep" in groups:
            return (groups["keep"] or "") + _REDACTED.format(kind)
        return _REDACTED.format(kind)

    return sub


def scrub(text: str) -> str:
    """Return the text with API keys, tokens, passwords, connection-string passwords and private keys redacted."""
    if not text:
        return text
    for kind, pattern in _PATTERNS:
        text = pattern.sub(_replace(kind), text)
    return text


def scrub_value(value):
    """Scrub every string inside a JSON-like value (dicts, lists, tuples, strings)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_value(v) for v in value)
    return value
