"""The SSRF guard: which addresses outbound requests that users aim (monitors, connections, AI) may reach.

Always refused unless BLAMETRAIL_OUTBOUND_ALLOW lists them: link-local and cloud metadata addresses and host
names, unspecified, multicast, broadcast and reserved addresses, in every spelling (decimal, hex, octal and short
IPv4 forms; IPv4 inside IPv6). Loopback and private ranges are allowed (self-hosted: internal services are the
point) unless BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE is on.

Two layers: `OutboundPolicy` decides (no I/O except `resolve`), and the HTTP clients built here resolve each
host once, vet every address, then connect to the vetted address itself, so a DNS answer that changes between
the check and the connection (rebinding) cannot swap the target. Every hop, redirects included, goes through it.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from blametrail.errors import UpstreamError

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOW_SETTING = "BLAMETRAIL_OUTBOUND_ALLOW"
PRIVATE_SETTING = "BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE"

# why: 169.254.170.2 is the ECS task metadata endpoint, 168.63.129.16 Azure's WireServer, 100.100.100.200 Alibaba's
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"))
METADATA_HOSTS = frozenset(("metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.internal"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "0.0.0.0" and its neighbours reach this host on Linux
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_RESERVED_V4 = ipaddress.ip_network("240.0.0.0/4")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")
_NUMERIC_V4 = re.compile(r"^[0-9a-fA-FxX.]+$")

_ALWAYS = {
    "metadata": "a link-local/cloud metadata address",
    "link-local": "a link-local/cloud metadata address",
    "unspecified": "an unspecified address",
    "multicast": "a multicast address",
    "broadcast": "a broadcast address",
    "reserved": "a reserved address",
}
_PRIVATE = {
    "loopback": "a loopback address",
    "private": "a private (RFC 1918) address",
    "ula": "a unique local (private IPv6) address",
    "cgnat": "a carrier-grade NAT (100.64.0.0/10) address",
}


class OutboundBlocked(UpstreamError):
    """An outbound request was refused by the SSRF guard; the message names the address and the setting."""


# --- parsing (pure) ------------------------------------------------------------------------------------------


def normalize_host(host: str) -> str:
    """Return a host as compared here: unquoted, NFKC-folded, lower case, without brackets or a trailing dot."""
    host = unicodedata.normalize("NFKC", unquote(host or "")).strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def literal_address(host: str) -> Address | None:
    """Return the IP address a host literally spells (any IPv4 form getaddrinfo accepts), else None; no DNS."""
    host = normalize_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and _NUMERIC_V4.match(host) and any(c.isdigit() for c in host):
        try:  # why: inet_aton is the parser behind getaddrinfo's numeric forms (2852039166, 0xa9fea9fe, 0251.0376…)
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def parse_allow(value: str | Iterable[str] | None) -> tuple[tuple[Network, ...], frozenset[str]]:
    """Split BLAMETRAIL_OUTBOUND_ALLOW into networks and host names; raise ValueError naming a bad entry."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    networks: list[Network] = []
    hosts: set[str] = set()
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(normalize_host(item), strict=False))
            continue
        except ValueError:
            pass
        host = normalize_host(item)
        if "/" in host or not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", host):
            raise ValueError(f"{ALLOW_SETTING} entry {raw!r} is neither an address, a CIDR range nor a host name")
        hosts.add(host)
    return tuple(networks), frozenset(hosts)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), else None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPAT and int(ip) > 1:  # ::a.b.c.d (deprecated); :: and ::1 are themselves
        return ipaddress.IPv4Address(int(ip))
    return None


def category(ip: Address, *, block_private: bool = False) -> str | None:
    """Return why an address is refused ("metadata", "link-local", …, "private" when blocking private), else None."""
    if ip.version == 6:
        inner = _embedded_v4(ip)
        if inner is not None:
            return category(inner, block_private=block_private)
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip == _BROADCAST:
        return "broadcast"
    if (ip.version == 4 and ip in _RESERVED_V4) or (ip.version == 6 and ip.is_reserved and not ip.is_loopback):
        return "reserved"
    if block_private:
        if ip.is_loopback:
            return "loopback"
        if ip.version == 4 and any(ip in n for n in _RFC1918):
            return "private"
        if ip.version == 6 and ip in _ULA:
            return "ula"
        if ip.version == 4 and ip in _CGNAT:
            return "cgnat"
    return None


# --- the policy ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundPolicy:
    """The operator's choice: block private ranges too?, and which addresses or host names to allow anyway."""

    block_private: bool = False
    allow_networks: tuple[Network, ...] = ()
    allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        """Return the policy of BLAMETRAIL_OUTBOUND_ALLOW and BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE."""
        networks, hosts = parse_allow(getattr(settings, "outbound_allow", "") or "")
        return cls(block_private=bool(getattr(settings, "outbound_block_private", False)), allow_networks=networks,
                   allow_hosts=hosts)

    def host_allowed(self, host: str) -> bool:
        """Tell whether the operator allowed this host name (its addresses are then not vetted)."""
        return normalize_host(host) in self.allow_hosts

    def _address_allowed(self, ip: Address) -> bool:
        forms = [ip]
        if ip.version == 6 and (inner := _embedded_v4(ip)) is not None:
            forms.append(inner)
        return any(f in n for f in forms for n in self.allow_networks if f.version == n.version)

    def refusal_for_address(self, ip: Address, *, host: str | None = None, resolved: bool = False) -> str | None:
        """Return the sentence refusing an address (spelled or resolved from `host`), or None if it is allowed."""
        kind = category(ip, block_private=self.block_private)
        if kind is None or self._address_allowed(ip):
            return None
        inner = _embedded_v4(ip) if ip.version == 6 else None
        detail = f"{inner} inside IPv6" if inner is not None else str(ip)
        if resolved and host:
            subject = f"{host} resolves to {detail},"
        elif host and normalize_host(host) != str(ip):
            subject = f"{host} ({detail}) is"
        else:
            subject = f"{ip} ({detail}) is" if inner is not None else f"{ip} is"
        if kind in _ALWAYS:
            return f"{subject} {_ALWAYS[kind]}; BlameTrail refuses it unless {ALLOW_SETTING} lists it."
        return (f"{subject} {_PRIVATE[kind]}; BlameTrail refuses private, loopback and CGNAT addresses while "
                f"{PRIVATE_SETTING} is on, unless {ALLOW_SETTING} lists it.")

    def refusal_for_host(self, host: str) -> str | None:
        """Return the sentence refusing a host from its spelling alone (literal address or metadata name); no DNS."""
        name = normalize_host(host)
        if not name or name in self.allow_hosts:
            return None
        ip = literal_address(name)
        if ip is not None:
            return self.refusal_for_address(ip, host=name)
        if name in METADATA_HOSTS:
            return f"{name} is a cloud metadata host name; BlameTrail refuses it unless {ALLOW_SETTING} lists it."
        if self.block_private and (name == "localhost" or name.endswith(".localhost")):
            return (f"{name} is a loopback host name; BlameTrail refuses private, loopback and CGNAT addresses while "
                    f"{PRIVATE_SETTING} is on, unless {ALLOW_SETTING} lists it.")
        return None

    def refusal_for_url(self, url: str) -> str | None:
        """Return the sentence refusing a URL from its scheme and host spelling, or None; no DNS (save time)."""
        try:
            parts = urlsplit(str(url))
            host = parts.hostname
        except ValueError:
            return None  # why: the caller's own URL validation explains a malformed URL better
        if parts.scheme.lower() not in ("http", "https"):
            return f"{url} is not an http:// or https:// URL; BlameTrail makes only HTTP(S) requests."
        return self.refusal_for_host(host) if host else None

    def check_url(self, url: str, *, resolve: bool = False, port: int | None = None) -> None:
        """Raise OutboundBlocked if the URL may not be called; with `resolve`, vet the host's DNS answers too.

        A name that does not resolve passes here: the request itself then fails with its DNS error.
        """
        sentence = self.refusal_for_url(url)
        if sentence:
            raise OutboundBlocked(sentence)
        if not resolve:
            return
        parts = urlsplit(str(url))
        try:
            self.resolve(parts.hostname or "", port or parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError):
            return

    def vet(self, host: str, addresses: Iterable[str]) -> list[str]:
        """Return the resolved addresses of a host if every one is allowed; raise OutboundBlocked otherwise."""
        found = list(dict.fromkeys(addresses))
        if self.host_allowed(host):
            return found
        for raw in found:
            sentence = self.refusal_for_address(ipaddress.ip_address(raw), host=host, resolved=True)
            if sentence:
                raise OutboundBlocked(sentence)
        return found

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve a host and return its vetted addresses (socket.gaierror when it does not resolve)."""
        sentence = self.refusal_for_host(host)
        if sentence:
            raise OutboundBlocked(sentence)
        infos = socket.getaddrinfo(normalize_host(host), port, type=socket.SOCK_STREAM)
        return self.vet(host, (info[4][0] for info in infos))


DEFAULT_POLICY = OutboundPolicy()


def policy_from(settings: Any) -> OutboundPolicy:
    """Return the outbound policy configured in the settings."""
    return OutboundPolicy.from_settings(settings)


def has_userinfo(url: str) -> bool:
    """Tell whether a URL carries credentials before its host (`https://user:password@host`)."""
    try:
        return "@" in urlsplit(str(url)).netloc
    except ValueError:
        return bool(_USERINFO.search(str(url)))


def redact_userinfo(url: str) -> str:
    """Return the URL with any credentials before its host shown as `***` (rows stored before they were refused)."""
    return _USERINFO.sub(r"\1***@", str(url)) if url and "@" in str(url) else url


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def blocked_in(exc: BaseException | None) -> OutboundBlocked | None:
    """Return the OutboundBlocked an exception was raised from (SDKs wrap it), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OutboundBlocked):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# --- guarded HTTP clients (httpx for monitors and connectors, httpx2 for the LLM SDKs) -------------------------
# why: httpx's transports take no network backend, so each guarded transport owns its connection pool (`_pool`, the
# one attribute HTTPTransport's methods use) built with a backend that vets the address it actually connects to.
# A proxied transport is httpx's own: the proxy resolves the name, so the request's host is vetted as this machine
# resolves it (best effort: a proxy with a different view of DNS is the operator's to restrict).


def _proxy_map(utils) -> dict[str, str | None]:
    """Return the environment's proxy mounts as httpx builds them (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY)."""
    try:
        return utils.get_environment_proxies()
    except Exception:  # why: a helper that moved in an upgrade must not stop outbound requests; they then go direct
        log.warning("could not read the proxy environment variables; outbound requests go direct")
        return {}


class _SyncBackend(httpcore.NetworkBackend):
    """Resolve once, vet every address, then connect to a vetted address (never to the name again)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = self._policy.resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise OutboundBlocked("BlameTrail makes outbound requests over TCP only, not to Unix sockets.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that refuses blocked URLs and connects only to vetted addresses."""

    def __init__(self, policy: OutboundPolicy, *, verify=True, limits: httpx.Limits | None = None,
                 trust_env: bool = True, proxy: str | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._policy, self._proxied = policy, proxy is not None
        if proxy is not None:
            super().__init__(verify=verify, limits=limits, trust_env=trust_env, proxy=proxy)
            return
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=trust_env),
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=_SyncBackend(policy))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._policy.check_url(str(request.url), resolve=self._proxied)
        return super().handle_request(request)


def client(policy: OutboundPolicy | None = None, *, verify=True, limits: httpx.Limits | None = None,
           trust_env: bool = True, **kwargs) -> httpx.Client:
    """Return an httpx.Client whose every connection, redirects included, goes only to vetted addresses."""
    from httpx import _utils

    policy = policy or DEFAULT_POLICY
    options = {"verify": verify, "limits": limits, "trust_env": trust_env}
    mounts = {}
    if trust_env:  # why: a custom transport turns httpx's own proxy support off; keep HTTP(S)_PROXY working
        mounts = {pattern: None if proxy is None else GuardedTransport(policy, proxy=proxy, **options)
                  for pattern, proxy in _proxy_map(_utils).items()}
    return httpx.Client(transport=GuardedTransport(policy, **options), mounts=mounts, trust_env=trust_env, **kwargs)


@functools.cache
def _async_v2_transport_class():
    """Build the httpx2 twin of GuardedTransport (httpx2 and anyio are imported only when an LLM is called)."""
    import anyio
    import httpcore2
    import httpx2

    class AsyncBackend(httpcore2.AsyncNetworkBackend):
        def __init__(self, policy: OutboundPolicy) -> None:
            self._policy = policy
            self._inner = httpcore2.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            sentence = self._policy.refusal_for_host(host)
            if sentence:
                raise OutboundBlocked(sentence)
            try:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(normalize_host(host), port, type=socket.SOCK_STREAM)
            except TimeoutError as exc:
                raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from exc
            except (OSError, UnicodeError) as exc:
                raise httpcore2.ConnectError(str(exc)) from exc
            error: Exception = httpcore2.ConnectError(f"{host} has no address")
            for address in self._policy.vet(host, (info[4][0] for info in infos)):
                try:
                    return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                         socket_options=socket_options)
                except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                    error = exc
            raise error

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            raise OutboundBlocked("BlameTrail makes outbound requests over TCP only, not to Unix sockets.")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    class AsyncGuardedTransport(httpx2.AsyncHTTPTransport):
        def __init__(self, policy: OutboundPolicy, *, verify=True, limits=None, trust_env: bool = True,
                     proxy: str | None = None) -> None:
            limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
            self._policy, self._proxied = policy, proxy is not None
            if proxy is not None:
                super().__init__(verify=verify, limits=limits, trust_env=trust_env, proxy=proxy)
                return
            self._pool = httpcore2.AsyncConnectionPool(
                ssl_context=httpx2.create_ssl_context(verify=verify, trust_env=trust_env),
                max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry, network_backend=AsyncBackend(policy))

        async def handle_async_request(self, request):
            # note: resolving for a proxied request blocks the loop briefly; only when a proxy is configured
            self._policy.check_url(str(request.url), resolve=self._proxied)
            return await super().handle_async_request(request)

    return AsyncGuardedTransport


def async_client_v2(policy: OutboundPolicy | None = None, *, verify=True, trust_env: bool = True, **kwargs):
    """Return an httpx2.AsyncClient (what the LLM SDKs take) that connects only to vetted addresses."""
    import httpx2
    from httpx2 import _utils

    policy = policy or DEFAULT_POLICY
    transport = _async_v2_transport_class()
    mounts = {}
    if trust_env:
        mounts = {pattern: None if proxy is None else transport(policy, verify=verify, trust_env=trust_env, proxy=proxy)
                  for pattern, proxy in _proxy_map(_utils).items()}
    return httpx2.AsyncClient(transport=transport(policy, verify=verify, trust_env=trust_env), mounts=mounts,
                              trust_env=trust_env, **kwargs)
