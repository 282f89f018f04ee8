"""The provider description each connector module declares, and the validation rules descriptions share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from blametrail.errors import ValidationFailed
from blametrail.netguard import OutboundPolicy, has_userinfo


@dataclass(frozen=True)
class Option:
    """One connection option: its type, bounds (a number's range, a string's length) and default."""

    kind: type
    low: float | None = None
    high: float | None = None
    default: Any = None  # None: unset, the connector (or the operator's BLAMETRAIL_CONNECTOR_* setting) decides
    check: Callable[[Provider, Any, list, OutboundPolicy | None], Any] | None = None  # a further rule (a URL's)


@dataclass(frozen=True)
class Credential:
    """One write-only credential field as the API names it and the settings form asks for it."""

    name: str
    label: str
    secret: bool = True  # a password input
    optional: bool = False
    autocomplete: str = "off"


# Every provider accepts these; their defaults are the operator's settings (Limits.from_settings).
COMMON_OPTIONS: Mapping[str, Option] = MappingProxyType({
    "timeout_seconds": Option(float, 0.1, 300), "max_series": Option(int, 1, 10_000),
    "max_points": Option(int, 10, 11_000), "max_lines": Option(int, 1, 100_000), "verify_tls": Option(bool, default=True),
})

EndpointRule = Callable[["Provider", str, OutboundPolicy | None], str]
CredentialRule = Callable[[dict[str, str], list], None]
QueryRule = Callable[["Provider", str, Any, list], Any]


def fail(loc: list, msg: str) -> ValidationFailed:
    """Return the validation error for one field (`loc` as pydantic spells it), ready to raise."""
    return ValidationFailed(f"{'.'.join(str(p) for p in loc)}: {msg}", [{"loc": loc, "msg": msg}])


def any_endpoint(provider: Provider, value: str, policy: OutboundPolicy | None) -> str:
    """Accept the endpoint as given (a provider that needs none)."""
    return value


def string_query(provider: Provider, kind: str, query: Any, loc: list) -> Any:
    """Accept a query that is a string (the query language's own text)."""
    if not isinstance(query, str):
        raise fail(loc, f"a {provider.name} query is a string")
    return query


def any_query(provider: Provider, kind: str, query: Any, loc: list) -> Any:
    """Accept any query (the in-memory twin ignores it)."""
    return query


def no_credential_rule(creds: dict[str, str], loc: list) -> None:
    """Accept any combination of the provider's credential fields."""


@dataclass(frozen=True)
class Provider:
    """Everything BlameTrail knows about one observability backend, declared once in its connector module."""

    name: str  # stored in connection.provider; also the API's `provider` value
    label: str  # shown in pages
    connector: Callable  # builds the Connector from a ConnectorConfig (its SDK is imported lazily, on first call)
    credential_fields: tuple[Credential, ...]
    kinds: tuple[str, ...] = ("metric",)
    options: Mapping[str, Option] = field(default_factory=dict)  # beyond COMMON_OPTIONS
    endpoint: EndpointRule = any_endpoint  # checks and normalizes the endpoint, raising `fail(...)`
    credentials: CredentialRule = no_credential_rule  # rules across the given credential fields
    query: QueryRule = string_query  # checks (and may normalize) one signal's query
    dev_only: bool = False  # only in development mode and tests
    endpoint_help: str = ""  # the API documentation's words, e.g. "base URL (http:// or https://)"
    credentials_help: str = ""
    credentials_hint: str = ""  # the settings form's words beside the provider's credential fields
    options_help: str = ""

    @property
    def credential_names(self) -> tuple[str, ...]:
        """Return the names of the credential fields, as the API spells them."""
        return tuple(c.name for c in self.credential_fields)

    def all_options(self) -> dict[str, Option]:
        """Return every option this provider accepts: the common ones and its own."""
        return {**COMMON_OPTIONS, **self.options}


# --- rules several providers share --------------------------------------------------------------------------


def http_url(value: str, loc: list) -> str:
    """Return an http(s) URL with a host, without its trailing slash, or raise."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        raise fail(loc, f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise fail(loc, "give an http:// or https:// URL with a host")
    return value.rstrip("/")


def no_credentials_in(value: str, loc: list, provider: Provider) -> str:
    """Refuse a URL with credentials before its host: they belong in the encrypted credential fields."""
    if has_userinfo(value):
        fields = " or ".join(provider.credential_names or ("token",))
        raise fail(loc, "the URL carries credentials (user:password@ before the host), which would be stored in plain "
                        f"text and shown to everyone in the organization; remove them and put them in the "
                        f"connection's credentials ({fields}), which are stored encrypted and never shown")
    return value


def reachable(url: str, loc: list, policy: OutboundPolicy | None) -> str:
    """Refuse a URL the SSRF guard would refuse from its spelling alone (no DNS: the host may not resolve yet)."""
    sentence = (policy or OutboundPolicy()).refusal_for_url(url)
    if sentence:
        raise fail(loc, sentence)
    return url


def safe_url(value: str, loc: list, provider: Provider, policy: OutboundPolicy | None) -> str:
    """Return a URL BlameTrail may call: http(s), no credentials in it, not refused by the SSRF guard."""
    return reachable(http_url(no_credentials_in(value, loc, provider), loc), loc, policy)


def url_option(provider: Provider, value: str, loc: list, policy: OutboundPolicy | None) -> str:
    """Check an option holding a URL BlameTrail will call (e.g. CloudWatch's endpoint_url)."""
    return safe_url(value, loc, provider, policy)


def base_url(example: str) -> EndpointRule:
    """Return the endpoint rule of an HTTP API reached at a base URL (`example` shows one)."""
    def rule(provider: Provider, value: str, policy: OutboundPolicy | None) -> str:
        loc = ["body", "endpoint"]
        if not value:
            raise fail(loc, f"give the {provider.name.title()} base URL, e.g. {example}")
        return safe_url(value, loc, provider, policy)
    return rule


TOKEN_OR_BASIC = (
    Credential("token", "Bearer token"), Credential("username", "Username", secret=False),
    Credential("password", "Password", autocomplete="new-password"),
)


def token_or_basic(creds: dict[str, str], loc: list) -> None:
    """Allow a bearer token, or a username with a password, but not both."""
    if creds.get("token") and (creds.get("username") or creds.get("password")):
        raise fail(loc, "give either a token or a username and password, not both")
    if bool(creds.get("username")) != bool(creds.get("password")):
        raise fail(loc, "basic auth needs both username and password")
