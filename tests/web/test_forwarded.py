"""Forwarded headers are believed only from BLAMETRAIL_TRUSTED_PROXIES: client address and scheme."""

from __future__ import annotations

import asyncio

import pytest

from blametrail.web.forwarded import trust_forwarded


def seen(trusted: str, peer: str, headers: dict[str, str], kind: str = "http") -> tuple:
    """Return the (client host, scheme) the wrapped app sees for one request."""
    scopes = []

    async def app(scope, receive, send):
        scopes.append(scope)

    scope = {"type": kind, "scheme": "ws" if kind == "websocket" else "http", "client": (peer, 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(trust_forwarded(app, trusted)(scope, None, None))
    return scopes[0]["client"][0], scopes[0]["scheme"]


@pytest.mark.parametrize(("trusted", "peer", "headers", "expected"), [
    ("", "127.0.0.1", {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}, ("127.0.0.1", "http")),
    ("10.0.0.0/8", "192.0.2.9", {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"},
     ("192.0.2.9", "http")),
    ("10.0.0.0/8", "10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 198.51.100.1, 10.1.1.1", "X-Forwarded-Proto": "https"},
     ("198.51.100.1", "https")),
    ("10.0.0.0/8", "10.0.0.2", {"X-Forwarded-Proto": "gopher"}, ("10.0.0.2", "http")),
    ("10.0.0.0/8", "10.0.0.2", {"X-Forwarded-Proto": "http, HTTPS"}, ("10.0.0.2", "https")),
])
def test_only_trusted_proxies_set_the_client_and_scheme(trusted, peer, headers, expected):
    assert seen(trusted, peer, headers) == expected


def test_a_websocket_behind_a_tls_proxy_is_wss():
    assert seen("127.0.0.1", "127.0.0.1", {"X-Forwarded-Proto": "https"}, kind="websocket") == ("127.0.0.1", "wss")
