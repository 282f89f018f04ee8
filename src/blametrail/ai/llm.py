"""The LLM drafting engine: prompt → provider (structured output, one repair, retries, caps) → grounding → audit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from blametrail.ai.prompt import Prompt, build_prompt
from blametrail.ai.providers import ProviderSpec, build_model, describe, output_mode
from blametrail.analysis.evidence import EvidencePack
from blametrail.engines.base import NO_CONTEXT, Audit, Draft, DraftContext, EngineFailed, Summary
from blametrail.engines.grounding import ground
from blametrail.engines.sections import Sections
from blametrail.engines.summary import SummaryOut, ground_summary
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy, async_client_v2, blocked_in

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
_REASON = 300  # characters of a provider's own message kept in the plain-words error


class _Truncated(Exception):
    """The model stopped because it hit the output-token cap."""


class LLMEngine:
    """Draft postmortems and incident summaries with an LLM provider (OpenAI-compatible or Anthropic)."""

    def __init__(
        self, spec: ProviderSpec, *, timeout_seconds: float = 60.0, max_retries: int = 3,
        retry_max_wait_seconds: float = 120.0, context_tokens: int = 24_000, max_output_tokens: int = 4_096,
        sleep: Callable[[float], None] = time.sleep, outbound: OutboundPolicy | None = None,
    ) -> None:
        self.spec = spec
        self.outbound = outbound or OutboundPolicy()
        self.label = f"{spec.name}:{spec.model}"
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.retry_max_wait_seconds = retry_max_wait_seconds
        self.context_tokens = context_tokens
        self.max_output_tokens = max_output_tokens
        self._sleep = sleep

    @property
    def who(self) -> str:
        """The provider in plain words ("Anthropic", "OpenAI-compatible server at http://…")."""
        return describe(self.spec)

    def draft(self, pack: EvidencePack, context: DraftContext = NO_CONTEXT) -> Draft:
        """Draft the postmortem sections from the evidence (building on the current sections when regenerating)."""
        prompt = build_prompt(pack, budget_tokens=self.context_tokens, current_sections=context.current_sections,
                              edited_keys=context.edited_keys, kind="postmortem")
        audit = Audit(prompt_version=prompt.version, prompt=prompt.to_json())
        try:
            grounded = ground(self._structured(prompt, Sections, audit), pack)
        except UpstreamError as exc:
            raise EngineFailed(str(exc), audit) from exc
        audit.prompt["grounding"] = {"dropped_citations": list(grounded.dropped_citations),
                                     "rejected_entries": grounded.rejected_entries, "notes": list(grounded.notes)}
        return Draft(grounded.sections, audit)

    def summarize(self, pack: EvidencePack) -> Summary:
        """Write the live incident summary (what is happening, impact, suspects, what was tried), cited."""
        prompt = build_prompt(pack, budget_tokens=self.context_tokens, kind="summary")
        audit = Audit(prompt_version=prompt.version, prompt=prompt.to_json())
        try:
            return Summary(ground_summary(self._structured(prompt, SummaryOut, audit), pack), audit)
        except UpstreamError as exc:
            raise EngineFailed(str(exc), audit) from exc

    # --- the model call ---------------------------------------------------------------------------------

    def _structured(self, prompt: Prompt, schema: type, audit: Audit) -> dict:
        """Send the prompt and return the model's validated answer as a dict, recording the exchange on `audit`;
        raise UpstreamError in plain words."""
        if prompt.tokens > self.context_tokens:
            raise UpstreamError(f"The prompt for {self.who} needs {prompt.tokens} tokens, more than the budget of "
                                f"{self.context_tokens} (BLAMETRAIL_AI_CONTEXT_TOKENS); nothing was sent.")
        waited, retries, latency_ms, tokens_in, tokens_out = 0.0, 0, 0, 0, 0
        while True:
            started = time.monotonic()
            messages: list = []
            try:
                result = _run(self._call(prompt, schema, messages))
                error = None
            except Exception as exc:  # classified below; anything unknown is re-raised
                result, error = None, exc
            latency_ms += int((time.monotonic() - started) * 1000)
            raw, t_in, t_out, truncated = _read_messages(messages)
            tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
            audit.response_raw = raw or audit.response_raw
            audit.tokens_in, audit.tokens_out, audit.latency_ms = tokens_in, tokens_out, latency_ms
            if error is None:
                if truncated:
                    raise UpstreamError(f"{self.who} returned a truncated response (max tokens reached: "
                                        f"{self.max_output_tokens}).")
                output = result.output
                return output.model_dump(mode="json") if hasattr(output, "model_dump") else dict(output)
            wait = self._retry_wait(error, retries)
            if wait is None or retries >= self.max_retries or waited + wait > self.retry_max_wait_seconds:
                raise self._plain_error(error, truncated=truncated, retries=retries,
                                        gave_up_wait=wait if wait is not None and retries < self.max_retries else None)
            log.warning("%s: %s; retry %d in %.1f s", self.label, _short(error), retries + 1, wait)
            self._sleep(wait)
            waited += wait
            retries += 1

    async def _call(self, prompt, schema: type, messages: list):
        """Run one agent call (with its one repair attempt) through a fresh SSRF-guarded HTTP client; fill `messages`."""
        from pydantic_ai import (  # why: pydantic-ai is slow to import; only on a call
            Agent,
            capture_run_messages,
        )
        from pydantic_ai.output import NativeOutput, PromptedOutput, ToolOutput
        from pydantic_ai.usage import UsageLimits

        wrap = {"tool": ToolOutput, "native": NativeOutput, "prompted": PromptedOutput}[output_mode(self.spec)]
        async with async_client_v2(self.outbound, timeout=self.timeout_seconds, follow_redirects=False) as http:
            model = build_model(self.spec, http)
            agent = Agent(model, output_type=wrap(schema), instructions=prompt.system, retries={"output": 1, "tools": 1})
            settings = {"max_tokens": self.max_output_tokens, "timeout": self.timeout_seconds,
                        "request_timeout": self.timeout_seconds, "max_retries": 0, "temperature": 0.2}
            # why: one answer plus one repair attempt, each capped; our own loop owns retries and backoff
            limits = UsageLimits(request_limit=2, output_tokens_limit=2 * self.max_output_tokens)
            with capture_run_messages() as captured:
                try:
                    return await agent.run(prompt.user, model_settings=settings, usage_limits=limits)
                finally:
                    messages.extend(captured)

    def _retry_wait(self, error: Exception, retries: int) -> float | None:
        """Return seconds to wait before retrying a 429/5xx (Retry-After wins, else exponential backoff), or None."""
        from pydantic_ai.exceptions import (  # why: pydantic-ai is slow to import; only once a call was made
            ModelHTTPError,
            ModelRateLimitError,
            ModelServerError,
            ModelUnavailableError,
        )

        if blocked_in(error) is not None:
            return None  # the SSRF guard refused the endpoint: asking again cannot help
        status = getattr(error, "status_code", None)
        retryable = isinstance(error, (ModelRateLimitError, ModelServerError, ModelUnavailableError)) or (
            isinstance(error, ModelHTTPError) and (status == 429 or (status or 0) >= 500))
        if not retryable:
            return None
        after = getattr(error, "retry_after", None)
        if after is not None and after >= 0:
            return float(after)
        backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries)
        return backoff * (0.5 + random.random() / 2)  # jitter: spread the retries of parallel workers

    def _plain_error(self, error: Exception, *, truncated: bool, retries: int, gave_up_wait: float | None) -> UpstreamError:
        """Turn a provider or pydantic-ai error into a message a person can act on."""
        from pydantic_ai.exceptions import (  # why: pydantic-ai is slow to import; only once a call was made
            ModelAPIError,
            ModelAuthenticationError,
            ModelConnectionError,
            ModelHTTPError,
            ModelNotFoundError,
            ModelRequestTimeout,
            ModelTimeoutError,
            OutputTokenLimitExceeded,
            UnexpectedModelBehavior,
            UsageLimitExceeded,
        )

        blocked = blocked_in(error)
        if blocked is not None:  # the SDKs wrap it as a connection error; the guard's own sentence says what to do
            exc = UpstreamError(f"{self.who} was not called: {blocked}")
            exc.__cause__ = error
            return exc
        who = self.who
        status = getattr(error, "status_code", None)
        reason = _provider_reason(error)
        after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
        if truncated or isinstance(error, OutputTokenLimitExceeded):
            msg = f"{who} returned a truncated response (max tokens reached: {self.max_output_tokens})."
        elif isinstance(error, (ModelTimeoutError, ModelRequestTimeout, TimeoutError)):
            msg = f"{who} timed out after {self.timeout_seconds:g} s{after}."
        elif isinstance(error, ModelAuthenticationError) or status in (401, 403):
            msg = (f"{who} rejected the API key ({status})." if status == 401 else
                   f"{who} refused access with this API key ({status}): {reason}.")
        elif isinstance(error, ModelNotFoundError) or status == 404:
            msg = f"{who} does not know the model {self.spec.model!r} ({status or 404}): {reason}."
        elif status == 429:
            msg = (f"{who} rate-limited the request (429) and kept refusing after {retries} "
                   f"{'retry' if retries == 1 else 'retries'}." if retries else f"{who} rate-limited the request (429).")
            if gave_up_wait is not None:
                msg += f" It asked to wait {gave_up_wait:g} s, beyond the retry budget of {self.retry_max_wait_seconds:g} s."
        elif isinstance(error, ModelHTTPError) and (status or 0) >= 500:
            msg = f"{who} failed with a server error ({status}){after}: {reason}."
        elif isinstance(error, ModelHTTPError):
            msg = f"{who} refused the request ({status}): {reason}."
        elif isinstance(error, ModelConnectionError):
            msg = f"{who} could not be reached: {reason}."
        elif isinstance(error, UsageLimitExceeded):
            msg = (f"{who} used more than the per-run token cap ({2 * self.max_output_tokens} output tokens, "
                   "BLAMETRAIL_AI_MAX_OUTPUT_TOKENS).")
        elif isinstance(error, UnexpectedModelBehavior):
            msg = f"{who} returned invalid JSON twice: {_validation_reason(error)}."
        elif isinstance(error, ModelAPIError):
            msg = f"{who} failed: {reason}."
        else:
            msg = f"{who} failed: {type(error).__name__}: {_short(error)}."
        if self.spec.api_key:  # why: providers may echo the key in their error; the message is shown and stored
            msg = msg.replace(self.spec.api_key, "[REDACTED]")
        exc = UpstreamError(msg)
        exc.__cause__ = error
        return exc


# --- helpers -------------------------------------------------------------------------------------------

def _run(coro):
    """Run a coroutine to completion from sync code (in a helper thread if this thread already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _read_messages(messages: list) -> tuple[str, int, int, bool]:
    """Return (raw responses text, input tokens, output tokens, last answer truncated) from a run's messages."""
    from pydantic_ai.messages import (  # why: slow import; only after a call
        ModelResponse,
        TextPart,
        ToolCallPart,
    )

    raws, t_in, t_out, truncated = [], 0, 0, False
    for m in messages:
        if not isinstance(m, ModelResponse):
            continue
        t_in += m.usage.input_tokens or 0
        t_out += m.usage.output_tokens or 0
        truncated = m.finish_reason == "length"  # why: the last answer decides; a repaired truncation is fine
        for part in m.parts:
            if isinstance(part, ToolCallPart):
                raws.append(part.args if isinstance(part.args, str) else json.dumps(part.args, ensure_ascii=False))
            elif isinstance(part, TextPart):
                raws.append(part.content)
    return "\n---\n".join(raws), t_in, t_out, truncated


def _short(value: object, limit: int = _REASON) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _provider_reason(error: Exception) -> str:
    """Return the provider's own error message (from its JSON body) or the exception's text, shortened."""
    body: Any = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
        if message:
            return _short(message)
    if body:
        return _short(body)
    cause = error.__cause__
    return _short(cause if cause is not None and str(cause) else error)


def _validation_reason(error: Exception) -> str:
    """Return a short reason for invalid output: the last validation error the model was shown, if any."""
    cause = error.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _short(f"{where}: {first.get('msg')}" if where else first.get("msg"))
        except Exception:  # why: best effort; the generic text below still says what happened
            pass
    return _short(cause or error)
