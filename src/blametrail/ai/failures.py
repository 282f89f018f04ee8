"""What went wrong with a model call, in plain words: transient or permanent, and what a person should change.

Rules, in order:
1. The SSRF guard refused the endpoint: permanent (asking again cannot help).
2. A refusal that names an option this server does not support (JSON-schema output, tool calls, the output-cap
   field, a system role) is permanent whatever its status — llama-cpp-python answers 500 to a request it cannot
   validate — and its message says which setting to change instead of quoting the server.
3. Other 4xx answers are permanent, except 408 (timeout), 409 (conflict) and 429 (rate limit).
4. 5xx answers are transient: retried with back-off (Retry-After wins). A timeout or a refused connection is not
   retried: it would most likely repeat, and the deadline for the whole draft would pass waiting for it.
A server's own text is shortened, and a Python traceback in it is reduced to its last line.
"""

from __future__ import annotations

import random
import re
from typing import Any

from blametrail.netguard import blocked_in

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
REASON_CHARS = 300  # characters of a provider's own message kept in the plain-words error
TRANSIENT_4XX = (408, 409, 429)

NO_JSON_SCHEMA = "this server does not support JSON-schema output; use the prompted mode"
NO_JSON_OBJECT = ("this server does not support JSON output with a schema (response_format json_object); "
                  "use the prompted mode")
NO_TOOLS = "this server does not support tool calls; use the prompted mode"
NO_MAX_COMPLETION_TOKENS = ("this server does not accept max_completion_tokens; set the provider option "
                            "max_tokens_param to max_tokens")
NO_MAX_TOKENS = ("this server does not accept max_tokens; set the provider option max_tokens_param to "
                 "max_completion_tokens")
NO_SYSTEM_ROLE = ("this server's chat format has no system role; turn on the provider option "
                  "instructions_in_user_message")

_TRACEBACK = re.compile(r"Traceback \(most recent call last\)", re.I)
_VALIDATION = re.compile(r"validation error|input should be|field required|extra inputs are not permitted|"
                         r"unrecognized request argument|unknown (?:field|parameter|argument)|not supported|"
                         r"unsupported|invalid_request_error|should be '", re.I)


class Truncated(Exception):
    """The model stopped (or was stopped) at the output cap before its JSON answer closed."""

    def __init__(self, tokens_out: int, *, past_cap: bool, counted_here: bool = False) -> None:
        super().__init__(f"truncated after {tokens_out} tokens")
        self.tokens_out = tokens_out
        self.past_cap = past_cap  # it wrote well past the cap we sent: the server ignores that field
        self.counted_here = counted_here  # the server reported no count: ours (another tokenizer) stands in


class NoToolCall(Exception):
    """Tool mode, and the server answered with plain text although a tool call was required."""


def short(value: object, limit: int = REASON_CHARS) -> str:
    """Return the text on one line, cut to `limit` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _without_traceback(text: str) -> str:
    """Return the last line of a Python traceback quoted in a server's answer (the exception), else the text."""
    if not _TRACEBACK.search(text):
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    exception_lines = [line for line in lines if re.match(r"^[\w.]+(?:Error|Exception)\b", line)]
    return (exception_lines or lines)[-1] if lines else text


def _raw_reason(error: BaseException) -> str:
    body: Any = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
        if message:
            return str(message)
        detail = body.get("detail")
        if detail:
            return str(detail)
    if body:
        return str(body)
    cause = error.__cause__
    return str(cause if cause is not None and str(cause) else error)


def provider_reason(error: BaseException) -> str:
    """Return the provider's own error message (from its JSON body) or the exception's text, shortened."""
    return short(_without_traceback(_raw_reason(error)))


def hint_for(error: BaseException, mode: str) -> str | None:
    """Return what to change when a refusal names an option this server does not support, else None."""
    status = getattr(error, "status_code", None)
    if status is None or status in TRANSIENT_4XX:
        return None
    text = _raw_reason(error).lower()
    if mode == "native" and ("json_schema" in text or "response_format" in text):
        return NO_JSON_SCHEMA
    if mode == "json_object" and "response_format" in text:
        return NO_JSON_OBJECT
    if mode == "tool" and re.search(r"\btool_choice\b|\btools\b|function.?call", text):
        return NO_TOOLS
    if "max_completion_tokens" in text:
        return NO_MAX_COMPLETION_TOKENS
    if re.search(r"\bmax_tokens\b", text) and ("max_completion_tokens" in text or "not supported" in text):
        return NO_MAX_TOKENS
    if re.search(r"system (?:role|message|prompt)s? (?:is |are )?not supported|roles must alternate", text):
        return NO_SYSTEM_ROLE
    return None


def is_permanent(error: BaseException, mode: str) -> bool:
    """Tell whether asking again cannot help (see the module's rules)."""
    if blocked_in(error) is not None:
        return True
    if isinstance(error, (Truncated, NoToolCall)):
        return True
    status = getattr(error, "status_code", None)
    if status is None:
        return False
    if hint_for(error, mode) is not None:
        return True
    if 400 <= status < 500:
        return status not in TRANSIENT_4XX
    # why: some OpenAI-compatible servers answer 500 to a request they cannot validate; sending it again fails again
    return bool(_VALIDATION.search(_raw_reason(error)))


def is_transient(error: BaseException) -> bool:
    """Tell whether a failure is worth retrying: 408/409/429 and 5xx answers (a timeout or a refused connection
    would most likely repeat, and the deadline would pass waiting for it)."""
    from pydantic_ai.exceptions import (  # why: pydantic-ai is slow to import; only once a call was made
        ModelHTTPError,
        ModelRateLimitError,
        ModelServerError,
        ModelUnavailableError,
    )

    status = getattr(error, "status_code", None)
    if isinstance(error, ModelHTTPError) or status is not None:
        return status in TRANSIENT_4XX or (status or 0) >= 500
    return isinstance(error, (ModelRateLimitError, ModelServerError, ModelUnavailableError))


def retry_wait(error: BaseException, retries: int, mode: str) -> float | None:
    """Return seconds to wait before retrying (Retry-After wins, else exponential back-off), or None: do not retry."""
    if is_permanent(error, mode) or not is_transient(error):
        return None
    after = getattr(error, "retry_after", None)
    if after is not None and after >= 0:
        return float(after)
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries)
    return backoff * (0.5 + random.random() / 2)  # jitter: spread the retries of parallel workers


def validation_reason(error: BaseException) -> str:
    """Return a short reason for invalid output: the last validation error the model was shown, if any."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return short(f"{where}: {first.get('msg')}" if where else first.get("msg"))
        except Exception:  # why: best effort; the generic text below still says what happened
            pass
    return short(cause or error)
