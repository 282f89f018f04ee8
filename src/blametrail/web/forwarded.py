"""Reverse proxies: the client address and scheme they forward, believed only from BLAMETRAIL_TRUSTED_PROXIES.

`blametrail serve` turns uvicorn's own proxy-header handling off, so this is the one place that reads
X-Forwarded-For and X-Forwarded-Proto. It rewrites the ASGI scope in place (as uvicorn would), so the access log,
the login throttle and everything else see the same client.
"""

from __future__ import annotations

from blametrail.orgs import throttle

SCHEMES = {"http": ("http", "ws"), "https": ("https", "wss")}


def trust_forwarded(app, trusted_proxies: str):
    """Wrap an ASGI app: a request from a trusted proxy carries the client address and scheme that proxy forwarded."""
    trusted = throttle.trusted_networks(trusted_proxies)
    if not trusted:
        return app

    async def wrapped(scope, receive, send):
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and throttle.trusted_peer(client[0], trusted):
            forwarded_for, proto = [], None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()  # why: the nearest proxy's word
            if forwarded_for:
                scope["client"] = (throttle.client_address(client[0], forwarded_for, trusted), 0)
            if proto in SCHEMES:
                scope["scheme"] = SCHEMES[proto][scope["type"] == "websocket"]
        return await app(scope, receive, send)

    return wrapped
