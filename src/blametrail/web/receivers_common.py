"""Shared by the webhook receivers: a size-capped body reader, the one bounded JSON loader, the presented secret."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qs

from fastapi import Request

from blametrail import safejson
from blametrail.errors import DomainError

SECRET_HEADER = "x-blametrail-secret"
DELIVERY_HEADER = "x-blametrail-delivery"
# The receivers read the raw body (size-capped, and signed for GitHub), so FastAPI cannot infer it: document it.
JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "The sender's JSON payload, as it sends it (docs/webhooks.md)."}}}}}


class PayloadTooLarge(DomainError):
    slug, status, title = "too-large", 413, "Payload too large"


class BadRequest(DomainError):
    slug, status, title = "bad-request", 400, "Bad request"


async def capped_body(request: Request) -> bytes:
    """Read the raw body, refusing more than webhook_max_body_bytes (declared or actually sent) with 413."""
    limit = request.app.state.runtime.settings.webhook_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadRequest(f"Invalid Content-Length header {declared[:40]!r}.") from exc
        if size > limit:
            raise PayloadTooLarge(f"The body is {size} bytes; this receiver accepts at most {limit} bytes.", limit=limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes; this receiver accepts at most {limit} bytes.",
                                  limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(body: bytes, *, content_type: str | None = None, error: type[DomainError] = BadRequest) -> object:
    """Parse a delivery's JSON (GitHub's form encoding `payload=<json>` too) within safejson's bounds, else `error`."""
    # why: every receiver parses through here, so none can meet RecursionError, a 5,000-digit number or a lone
    # surrogate further on (each was a 500); the receiver names its own 400 problem type
    if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise error("The form body cannot be decoded; send JSON (Content-Type: application/json).") from exc
        if len(form.get("payload", [])) != 1:
            raise error("The form body has no 'payload' field holding the JSON.")
        body = form["payload"][0].encode("utf-8")
    try:
        return safejson.loads(body)
    except UnicodeDecodeError as exc:
        raise error(f"The body is not UTF-8 (invalid byte at offset {exc.start}).") from exc
    except json.JSONDecodeError as exc:
        raise error(f"Malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}.",
                    line=exc.lineno, column=exc.colno, position=exc.pos) from exc
    except safejson.UnsafeJSON as exc:
        raise error(f"The JSON body is refused: {exc}.") from exc


def presented_secret(request: Request) -> str | None:
    """Return the secret the sender presented: X-BlameTrail-Secret, Bearer, or the password of Basic auth."""
    if request.headers.get(SECRET_HEADER):
        return request.headers[SECRET_HEADER].strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None
