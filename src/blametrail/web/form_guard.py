"""ASGI guard in front of the CSRF layer for browser form posts: normalise what asgi-csrf cannot parse.

asgi-csrf (the CSRF check of every page POST) trusts its input: its multipart parser fails on the installed
python-multipart (and on any boundary not spelled "; boundary="), a urlencoded body that is not UTF-8 makes it
raise before the app runs (a 500), and any request carrying "Authorization: Bearer" skips its check. Pages
authenticate by cookie only and post urlencoded forms only (no page uploads files), so for them this guard drops
the Authorization header, answers multipart with 415, and turns an undecodable body into a 400 problem.
"""

from __future__ import annotations

from blametrail.web.errors import problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _is_multipart(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"content-type" and value.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
               for name, value in headers)


def guard_forms(app, *, skip_prefixes: tuple[str, ...]):
    """Wrap the CSRF layer: page POSTs reach it without Authorization and never as multipart; bad text is a 400."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or scope["path"].startswith(skip_prefixes):
            return await app(scope, receive, send)
        # why: pages never authenticate by header, and asgi-csrf skips its check when one says Bearer
        headers = [(name, value) for name, value in scope.get("headers") or [] if name != b"authorization"]
        if _is_multipart(headers):
            refusal = problem(415, "unsupported-media-type", "Unsupported media type",
                              "Forms are posted as application/x-www-form-urlencoded; multipart is not accepted.")
            return await refusal(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app({**scope, "headers": headers}, receive, tracking_send)
        except UnicodeDecodeError:
            if started:
                raise
            await problem(400, "bad-request", "Bad request", "The form is not valid UTF-8 text.")(scope, receive, send)

    return guarded
