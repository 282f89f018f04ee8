"""The LLM drafting engine: prompt → provider (streamed structured output, one repair, retries) → grounding → audit.

One deadline (BLAMETRAIL_AI_DEADLINE_SECONDS, default 55 s) covers a whole draft: every request, the one repair,
the retries and the waits between them; a wait that would end past it is not started. Each answer is streamed, and
the stream is closed as soon as the model writes on after the answer's top-level JSON object (words, or whitespace
padding), when it writes well past the output cap, or when the deadline or the request timeout passes — closing it
is what makes the server stop generating, so the next call does not queue behind an abandoned one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from blametrail.ai import failures, tokens
from blametrail.ai.failures import NoToolCall, Truncated, short
from blametrail.ai.jsonscan import ObjectCloser, first_object
from blametrail.ai.prompt import Prompt, build_prompt
from blametrail.ai.providers import ProviderSpec, build_model, describe, output_mode, request_settings
from blametrail.ai.providers import openai as openai_provider
from blametrail.analysis.evidence import EvidencePack
from blametrail.engines.base import NO_CONTEXT, Audit, Draft, DraftContext, EngineFailed, Summary
from blametrail.engines.grounding import ground
from blametrail.engines.sections import Sections
from blametrail.engines.summary import SummaryOut, ground_summary
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy, async_client_v2, blocked_in

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_SECONDS = 55.0
ASKING_MODEL, CHECKING_CITATIONS = "asking_model", "checking_citations"  # the progress steps a draft reports
CAP_SLACK = 1.25  # a stream is stopped once it runs this far past the cap (our tokenizer differs from the server's)
TRAILING_WHITESPACE = 32  # characters of whitespace tolerated after the JSON object before the stream is stopped
_RECOUNT_CHARS = 400  # recount a stream's tokens after this many new characters
_EXPIRED = 0.05  # seconds: a deadline this close is as good as passed (timers fire a hair early)



class Deadline:
    """A point in time a whole draft must finish by (monotonic clock)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Return the seconds left (never negative)."""
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        """Tell whether the deadline has passed."""
        return self.remaining() <= _EXPIRED


class _DeadlinePassed(Exception):
    """The call's share of the deadline ran out (raised from our own budget, not from a timeout inside the call)."""


class LLMEngine:
    """Draft postmortems and incident summaries with an LLM provider (OpenAI-compatible or Anthropic)."""

    def __init__(
        self, spec: ProviderSpec, *, timeout_seconds: float = 60.0, max_retries: int = 3,
        retry_max_wait_seconds: float = 120.0, context_tokens: int = 24_000, max_output_tokens: int = 4_096,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS, instructions_in_user_message: bool = False,
        sleep: Callable[[float], None] = time.sleep, outbound: OutboundPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.outbound = outbound or OutboundPolicy()
        self.label = f"{spec.name}:{spec.model}"
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.retry_max_wait_seconds = retry_max_wait_seconds
        self.context_tokens = context_tokens
        self.max_output_tokens = max_output_tokens
        self.deadline_seconds = deadline_seconds
        self.instructions_in_user_message = instructions_in_user_message
        self._sleep = sleep
        self._monotonic = monotonic

    @property
    def who(self) -> str:
        """The provider in plain words ("Anthropic", "OpenAI-compatible server at http://…")."""
        return describe(self.spec)

    @property
    def mode(self) -> str:
        """The output mode in use (tool, native, prompted or json_object)."""
        return output_mode(self.spec)

    def draft(self, pack: EvidencePack, context: DraftContext = NO_CONTEXT) -> Draft:
        """Draft the postmortem sections from the evidence (building on the current sections when regenerating).

        The context's listener hears "asking_model" before the first request and "checking_citations" once the model
        answered; action items on a service go to the team the template names for it.
        """
        step = context.step
        deadline = Deadline(self.deadline_seconds, self._monotonic)
        prompt = build_prompt(pack, budget_tokens=self.context_tokens, current_sections=context.current_sections,
                              edited_keys=context.edited_keys, instructions=context.instructions, kind="postmortem",
                              extra_sections=context.extra_sections,
                              severity_definitions=context.severity_definitions)
        audit = Audit(prompt_version=prompt.version, prompt=prompt.to_json())
        try:
            step(ASKING_MODEL)
            answer = self.ask(prompt, Sections, audit=audit, deadline=deadline)
            step(CHECKING_CITATIONS)
            grounded = ground(answer, pack, service_owners=context.service_owners,
                              severity_definitions=context.severity_scale)
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
            return Summary(ground_summary(self.ask(prompt, SummaryOut, audit=audit), pack), audit)
        except UpstreamError as exc:
            raise EngineFailed(str(exc), audit) from exc

    # --- the model call ---------------------------------------------------------------------------------

    def ask(self, prompt: Prompt, schema: type[BaseModel], *, audit: Audit | None = None,
            deadline: Deadline | None = None) -> dict:
        """Send the prompt and return the model's answer validated against `schema`, as a dict.

        The exchange (raw answers, tokens, latency) is recorded on `audit`; failures raise UpstreamError in plain
        words. Everything happens before `deadline` (a new one of `deadline_seconds` when none is given).
        """
        audit = audit if audit is not None else Audit(prompt_version=prompt.version, prompt=prompt.to_json())
        deadline = deadline or Deadline(self.deadline_seconds, self._monotonic)
        if prompt.tokens > self.context_tokens:
            raise UpstreamError(f"The prompt for {self.who} needs {prompt.tokens} tokens, more than the budget of "
                                f"{self.context_tokens} (BLAMETRAIL_AI_CONTEXT_TOKENS); nothing was sent.")
        mode = self.mode
        waited, retries, latency_ms, tokens_in, tokens_out = 0.0, 0, 0, 0, 0
        last_error: Exception | None = None
        while True:
            if deadline.expired():
                raise self._deadline_error(deadline, retries, last_error)
            started = time.monotonic()
            messages: list = []
            watch = _Watch(mode, self.max_output_tokens)
            try:
                output = _run(self._call(prompt, schema, messages, watch, deadline.remaining()))
                error = None
            except Exception as exc:  # classified below
                output, error = None, exc
            latency_ms += int((time.monotonic() - started) * 1000)
            raw, t_in, t_out = _read_messages(messages)
            if watch.cut or not t_out:  # why: a stream stopped early (or a server that sends no usage) leaves
                t_out = max(t_out, watch.counted())  # only our own count of what came back
            if not t_in and (raw or t_out):  # why: llama-cpp-python's stream reports no usage: our count of the prompt
                t_in = prompt.tokens
            tokens_in, tokens_out = tokens_in + t_in, tokens_out + t_out
            audit.response_raw = raw or audit.response_raw
            audit.tokens_in, audit.tokens_out, audit.latency_ms = tokens_in, tokens_out, latency_ms
            if error is None:
                return output.model_dump(mode="json") if hasattr(output, "model_dump") else dict(output)
            if isinstance(error, _DeadlinePassed) or deadline.expired():  # whatever failed last, time is up
                raise self._deadline_error(deadline, retries, None if isinstance(error, _DeadlinePassed) else error,
                                           earlier=last_error) from error
            wait = failures.retry_wait(error, retries, mode)
            if wait is None or retries >= self.max_retries or waited + wait > self.retry_max_wait_seconds:
                raise self._plain_error(error, retries=retries,
                                        gave_up_wait=wait if wait is not None and retries < self.max_retries else None)
            if wait >= deadline.remaining():  # why: a retry never sleeps past the deadline
                exc = self._plain_error(error, retries=retries, gave_up_wait=None)
                raise UpstreamError(f"{exc} No retry: waiting {wait:.3g} s would pass the {deadline.seconds:g} s "
                                    "deadline for a draft.") from error
            log.warning("%s: %s; retry %d in %.1f s", self.label, short(error), retries + 1, wait)
            self._sleep(wait)
            waited += wait
            retries += 1
            last_error = error

    async def _call(self, prompt: Prompt, schema: type[BaseModel], messages: list, watch: _Watch, budget: float):
        """Run one answer (with its one repair) within `budget` seconds through a fresh SSRF-guarded HTTP client."""
        from pydantic_ai import (  # why: pydantic-ai is slow to import; only on a call
            Agent,
            capture_run_messages,
        )
        from pydantic_ai.usage import UsageLimits

        system, user = prompt.system, prompt.user
        if self.instructions_in_user_message:
            # why: some chat formats (llama-cpp-python's gemma) silently drop system messages
            system, user = "", f"{prompt.system}\n\n{prompt.user}"
        schema_json = schema.model_json_schema()
        settings: dict[str, Any] = {
            "max_tokens": self.max_output_tokens, "timeout": self.timeout_seconds,
            "request_timeout": self.timeout_seconds, "max_retries": 0, "temperature": 0.2,
            **request_settings(self.spec, schema_json)}
        # why: one answer plus one repair attempt, each capped; our own loop owns retries and backoff
        limits = UsageLimits(request_limit=2, output_tokens_limit=2 * self.max_output_tokens)
        budget_scope = asyncio.timeout(budget)
        try:
            async with budget_scope:
                async with async_client_v2(self.outbound, timeout=self.timeout_seconds, follow_redirects=False) as http:
                    model = build_model(self.spec, http)
                    agent = Agent(model, output_type=_output_type(self.mode, schema), instructions=system or None,
                                  retries={"output": 1, "tools": 1})
                    with capture_run_messages() as captured:
                        try:
                            async with agent.iter(user, model_settings=settings, usage_limits=limits) as run:
                                async for node in run:
                                    if Agent.is_model_request_node(node):
                                        await self._stream_answer(node, run.ctx, watch)
                            return run.result.output
                        finally:
                            messages.extend(captured)
        except TimeoutError as exc:
            if budget_scope.expired():  # why: our own budget, not a timeout inside the call
                raise _DeadlinePassed() from exc
            raise

    async def _stream_answer(self, node, ctx, watch: _Watch) -> None:
        """Stream one model answer, stopping once it writes on after its JSON object or runs past the cap; check it."""
        from pydantic_ai.messages import TextPart, ToolCallPart

        watch.start_answer()
        async with node.stream(ctx) as stream:
            async for event in stream:
                if watch.feed(event):
                    watch.cut = True
                    break  # why: leaving the stream closes the connection, so the server stops generating
            response = stream.response
        counted = watch.counted()
        reported = response.usage.output_tokens or 0
        # why: first, because a server that ignores the required tool call often also writes on until the cap
        if watch.mode == "tool" and not any(isinstance(p, ToolCallPart) for p in response.parts) and any(
                isinstance(p, TextPart) and p.content.strip() for p in response.parts):
            raise NoToolCall()
        if watch.over_cap:
            raise Truncated(max(counted, reported), past_cap=True, counted_here=counted > reported)
        if response.finish_reason == "length" and not watch.closed:
            written = reported or counted
            raise Truncated(written, past_cap=written > self.max_output_tokens * CAP_SLACK, counted_here=not reported)

    # --- errors in plain words ----------------------------------------------------------------------------

    def _deadline_error(self, deadline: Deadline, retries: int, error: Exception | None, *,
                        earlier: Exception | None = None) -> UpstreamError:
        """Say the deadline passed, and what the last attempt that failed said (if one did)."""
        msg = f"{self.who}: the model did not answer within {deadline.seconds:g} s"
        failed = error or earlier
        if failed is not None:
            tries = f"{retries + 1} {'attempt' if retries == 0 else 'attempts'}"
            inner = str(self._plain_error(failed, retries=0, gave_up_wait=None)).removeprefix(self.who).strip()
            msg += f" ({tries}; the last one {inner.rstrip('.')})"
        msg += (". The deadline covers a whole draft: raise BLAMETRAIL_AI_DEADLINE_SECONDS or the organization's "
                "deadline_seconds option for a slow model (see docs/models.md).")
        return self._redacted(msg)

    def _plain_error(self, error: Exception, *, retries: int, gave_up_wait: float | None) -> UpstreamError:
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
        reason = failures.provider_reason(error)
        after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
        hint = failures.hint_for(error, self.mode)
        if isinstance(error, Truncated):
            msg = self._truncation(error)
        elif isinstance(error, NoToolCall):
            msg = f"{who} answered with plain text instead of the required tool call: {failures.NO_TOOLS}."
        elif isinstance(error, OutputTokenLimitExceeded):
            msg = f"{who} stopped at the output cap before its JSON answer was complete."
        elif hint is not None:
            msg = f"{who} refused the request ({status}): {hint}."
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
        elif isinstance(error, ModelHTTPError) and failures.is_permanent(error, self.mode):
            msg = f"{who} refused the request as invalid ({status}): {reason}."
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
            msg = f"{who} returned invalid JSON twice: {failures.validation_reason(error)}."
        elif isinstance(error, ModelAPIError):
            msg = f"{who} failed: {reason}."
        else:
            msg = f"{who} failed: {type(error).__name__}: {short(error)}."
        exc = self._redacted(msg)
        exc.__cause__ = error
        return exc

    def _truncation(self, error: Truncated) -> str:
        written = f"about {error.tokens_out:,} tokens (counted here)" if error.counted_here else (
            f"{error.tokens_out:,} tokens")
        msg = (f"{self.who} stopped after writing {written}, before its JSON answer was complete "
               f"(output cap {self.max_output_tokens:,} tokens).")
        if error.past_cap and self.spec.name == "openai":
            sent = openai_provider.max_tokens_param(self.spec)
            other = next(p for p in openai_provider.MAX_TOKENS_PARAMS if p != sent)
            msg += (f" The server did not stop at the cap sent as {sent}: it seems to ignore that field; set the "
                    f"provider option max_tokens_param to {other}.")
        elif error.past_cap:
            msg += " The server did not stop at the cap."
        else:
            msg += " Raise max_output_tokens, or use a model that answers more briefly."
        return msg

    def _redacted(self, msg: str) -> UpstreamError:
        if self.spec.api_key:  # why: providers may echo the key in their error; the message is shown and stored
            msg = msg.replace(self.spec.api_key, "[REDACTED]")
        return UpstreamError(msg)


# --- streaming -----------------------------------------------------------------------------------------

class _Watch:
    """Follow one call's streamed answers: where the JSON answer closes and how many tokens were written."""

    def __init__(self, mode: str, cap: int) -> None:
        self.mode, self.cap = mode, cap
        self.cut = False  # the last stream was stopped before the server finished it
        self.over_cap = False
        self._closers: dict[int, ObjectCloser] = {}
        self._pending: list[str] = []  # text not counted yet
        self._pending_chars = 0
        self._count = 0

    @property
    def closed(self) -> bool:
        return any(c.closed for c in self._closers.values())

    def start_answer(self) -> None:
        """Begin a new answer (the repair attempt starts from nothing)."""
        self._closers, self._pending, self._pending_chars, self._count = {}, [], 0, 0
        self.over_cap = self.cut = False

    def counted(self) -> int:
        """Return the tokens written in the current answer, as our tokenizer counts them."""
        if self._pending:
            # why: counted piece by piece (a token split across two pieces counts twice, a rounding that does not
            # matter here) so a long stream is not re-tokenized from its start every few hundred characters
            self._count += tokens.raw_count("".join(self._pending))
            self._pending, self._pending_chars = [], 0
        return self._count

    def feed(self, event) -> bool:
        """Take one stream event; return True when the stream should stop."""
        from pydantic_ai.messages import (
            PartDeltaEvent,
            PartStartEvent,
            TextPart,
            TextPartDelta,
            ThinkingPart,
            ThinkingPartDelta,
            ToolCallPart,
            ToolCallPartDelta,
        )

        text, is_output = "", False
        if isinstance(event, PartStartEvent):
            part = event.part
            if isinstance(part, TextPart):
                text, is_output = part.content, self.mode != "tool"
            elif isinstance(part, ToolCallPart):
                text = part.args if isinstance(part.args, str) else json.dumps(part.args) if part.args else ""
                is_output = self.mode == "tool"
            elif isinstance(part, ThinkingPart):
                text = part.content
        elif isinstance(event, PartDeltaEvent):
            delta = event.delta
            if isinstance(delta, TextPartDelta):
                text, is_output = delta.content_delta, self.mode != "tool"
            elif isinstance(delta, ToolCallPartDelta):
                args = delta.args_delta
                text = args if isinstance(args, str) else json.dumps(args) if args else ""
                is_output = self.mode == "tool"
            elif isinstance(delta, ThinkingPartDelta):
                text = delta.content_delta or ""
        else:
            return False
        if not text:
            return False
        self._pending.append(text)
        self._pending_chars += len(text)
        if is_output and self._closers.setdefault(event.index, ObjectCloser()).feed(text):
            after = self._closers[event.index].after
            # why: a well-behaved server ends right after the object (its finish and usage chunks are worth waiting
            # for); words after it mean the model rambles on, and grammar-constrained servers are known to pad with
            # whitespace until the cap
            if after.strip() or len(after) > TRAILING_WHITESPACE:
                return True
        if self._pending_chars >= _RECOUNT_CHARS and self.counted() > self.cap * CAP_SLACK + 32:
            self.over_cap = True  # why: a server that ignores the cap would write until its context is full
            return True
        return False


def _output_type(mode: str, schema: type[BaseModel]):
    """Return pydantic-ai's output spec for a mode; prompted and json_object read the first JSON object of the text."""
    from pydantic_ai import ModelRetry
    from pydantic_ai.output import NativeOutput, TextOutput, ToolOutput

    if mode == "tool":
        return ToolOutput(schema)
    if mode == "native":
        return NativeOutput(schema)

    def parse_json_answer(text: str) -> BaseModel:
        # why: the stream stops when the object closes, but a chunk may carry words after it; fences are fine too
        found = first_object(text)
        if found is None:
            raise ModelRetry("Answer with one JSON object that follows the schema, nothing else.")
        try:
            return schema.model_validate_json(found)
        except ValidationError as exc:
            raise ModelRetry(f"The JSON object does not follow the schema: {exc.errors(include_url=False)}") from exc

    return TextOutput(parse_json_answer)


# --- helpers -------------------------------------------------------------------------------------------

def _run(coro):
    """Run a coroutine to completion from sync code (in a helper thread if this thread already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _read_messages(messages: list) -> tuple[str, int, int]:
    """Return (raw responses text, input tokens, output tokens) from a run's messages."""
    from pydantic_ai.messages import (  # why: slow import; only after a call
        ModelResponse,
        TextPart,
        ToolCallPart,
    )

    raws, t_in, t_out = [], 0, 0
    for m in messages:
        if not isinstance(m, ModelResponse):
            continue
        t_in += m.usage.input_tokens or 0
        t_out += m.usage.output_tokens or 0
        for part in m.parts:
            if isinstance(part, ToolCallPart):
                raws.append(part.args if isinstance(part.args, str) else json.dumps(part.args, ensure_ascii=False))
            elif isinstance(part, TextPart):
                raws.append(part.content)
    return "\n---\n".join(raws), t_in, t_out
