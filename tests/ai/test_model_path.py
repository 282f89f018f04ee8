"""The model path keeps its time bound and says what to change: streaming with an early stop, one deadline for a
whole draft, permanent errors never retried, provider options, and the one rule for environment variables.

Every test runs against the local servers of tests/ai/wire.py, which stream exactly as OpenAI and Anthropic do.
"""

from __future__ import annotations

import json
import time

import pytest

from blametrail.ai import failures
from blametrail.ai.llm import LLMEngine
from blametrail.ai.providers import ProviderSpec, build_model
from blametrail.ai.providers.openai import max_tokens_param
from blametrail.engines.sections import Sections
from blametrail.errors import UpstreamError
from blametrail.netguard import async_client_v2
from tests.ai.test_providers import GOOD, engine, good, llm_pack
from tests.ai.wire import (
    FakeProvider,
    anthropic_text,
    anthropic_tool_use,
    anthropic_usage,
    openai_error,
    openai_text,
    openai_tool_call,
    openai_usage,
)

GENEROUS = 20.0  # seconds: "finished well before this", never a tight timing


@pytest.fixture
def server():
    with FakeProvider() as fp:
        yield fp


def _wait_for(predicate, seconds: float = 10.0) -> bool:
    """Poll until the predicate holds (the server notices a closed stream on its next write)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class FakeClock:
    """A monotonic clock that only moves when the engine sleeps between retries."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- streaming: stop once the answer's JSON object closes ------------------------------------------------

def test_every_request_is_streamed_and_a_well_behaved_answer_keeps_the_servers_token_counts(server):
    server.script(openai_text(json.dumps(GOOD), usage=openai_usage(500, 250)))
    draft = engine(server, mode="prompted").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]
    body = server.requests[0]["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (draft.audit.tokens_in, draft.audit.tokens_out) == (500, 250)  # read to the end: the usage chunk came
    assert server.disconnects == 0


def test_a_server_that_streams_no_usage_gets_our_own_token_counts(server):
    reply = openai_text(json.dumps(GOOD))
    reply["json"]["usage"] = None  # llama-cpp-python's stream carries no usage
    server.script(reply)
    draft = engine(server, mode="prompted").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]
    assert draft.audit.tokens_in == draft.audit.prompt["tokens"] > 0
    assert draft.audit.tokens_out > 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_model_that_rambles_after_its_json_is_cut_off_and_the_stream_closed(server, provider):
    ramble = ["\n\nThat is the postmortem. ", *["More words the model keeps writing. "] * 400]
    reply = (openai_text(json.dumps(GOOD), after=ramble, chunk_delay=0.005) if provider == "openai" else
             anthropic_text(json.dumps(GOOD), after=ramble, chunk_delay=0.005))
    server.script(reply)
    draft = engine(server, provider, mode="prompted").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]  # the object was read, the words after it ignored
    assert _wait_for(lambda: server.disconnects == 1), "the stream was not closed: the server would write on"
    assert server.chunks_sent < 100  # of more than 400: it stopped right after the object
    assert draft.audit.tokens_out > 0  # the server's count never came; ours stands in


def test_whitespace_padding_after_the_object_is_cut_off_too(server):
    # llama.cpp's JSON grammar lets a small model pad with newlines until its cap
    server.script(openai_text(json.dumps(GOOD), after=["\n"] * 3000, chunk_delay=0.002))
    draft = engine(server, mode="json_object").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]
    assert _wait_for(lambda: server.disconnects == 1)
    assert server.chunks_sent < 200


def test_a_server_that_ignores_the_output_cap_is_stopped_and_told_which_field_to_send(server):
    endless = '{"summary": "' + "checkout failed again and again " * 2000  # never closes, far past the cap
    server.script(openai_text(endless, finish="length", chunk_chars=400, chunk_delay=0.002))
    e = engine(server, mode="prompted", max_output_tokens=256)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    message = str(info.value)
    written = int(message.split("stopped after writing about ")[1].split(" tokens")[0].replace(",", ""))
    assert " tokens (counted here), before its JSON answer was complete" in message  # the server's count never came
    assert 256 < written < 2000  # what came back (counted here), not the cap
    assert ("The server did not stop at the cap sent as max_tokens: it seems to ignore that field; set the provider "
            "option max_tokens_param to max_completion_tokens.") in message
    assert len(server.requests) == 1
    assert _wait_for(lambda: server.disconnects == 1)


# --- one deadline for a whole draft -----------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_past_the_deadline_the_draft_ends_with_the_plain_reason_and_the_stream_is_closed(server, provider):
    slow = '{"summary": "' + "still thinking " * 400
    server.script(openai_text(slow, chunk_chars=8, chunk_delay=0.05) if provider == "openai" else
                  anthropic_text(slow, chunk_chars=8, chunk_delay=0.05))
    e = engine(server, provider, mode="prompted", deadline_seconds=1, timeout_seconds=30)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert time.monotonic() - started < GENEROUS
    assert str(info.value).startswith(f"{e.who}: the model did not answer within 1 s.")
    assert _wait_for(lambda: server.disconnects == 1), "the server would keep generating for nobody"
    assert info.value.audit.response_raw  # what came back before the deadline is kept for the audit


def test_the_deadline_covers_a_server_that_answers_nothing(server):
    server.script({**openai_tool_call(GOOD), "sleep": 3})
    e = engine(server, deadline_seconds=0.5, timeout_seconds=30)
    with pytest.raises(UpstreamError, match=r"the model did not answer within 0\.5 s\."):
        e.draft(llm_pack())


def test_retries_never_sleep_past_the_deadline(server):
    server.script(*[openai_error(429, "slow down", headers={"retry-after": "1"})] * 4)
    clock = FakeClock()
    spec = ProviderSpec(name="openai", model="gpt-test", base_url=server.url + "/v1", api_key="sk-test-123")
    e = LLMEngine(spec, timeout_seconds=5, max_retries=3, retry_max_wait_seconds=60, deadline_seconds=2.5,
                  sleep=clock.sleep, monotonic=clock)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert clock.sleeps == [1.0, 1.0] and len(server.requests) == 3
    assert str(info.value).endswith("kept refusing after 2 retries. No retry: waiting 1 s would pass the 2.5 s "
                                    "deadline for a draft.")


def test_a_deadline_reached_while_retrying_says_what_failed_last(server):
    clock = FakeClock()
    server.on_request = lambda body: setattr(clock, "now", clock.now + 1.0)  # each answer takes a second
    server.script(*[openai_error(429, "slow down", headers={"retry-after": "1"})] * 3)
    spec = ProviderSpec(name="openai", model="gpt-test", base_url=server.url + "/v1")
    e = LLMEngine(spec, max_retries=10, retry_max_wait_seconds=600, deadline_seconds=3, sleep=clock.sleep,
                  monotonic=clock)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert clock.sleeps == [1.0] and len(server.requests) == 2
    assert str(info.value).startswith(f"{e.who}: the model did not answer within 3 s (2 attempts; the last one "
                                      "rate-limited the request (429)). The deadline covers a whole draft")


# --- permanent errors: never retried, said in plain words ---------------------------------------------------

TRACEBACK = ("Traceback (most recent call last):\n  File \"/srv/llama_cpp/server/app.py\", line 512, in create\n"
             "    raise ValueError(msg)\nValueError: response_format.type should be 'text' or 'json_object'")


def test_a_server_without_json_schema_support_is_told_in_plain_words_without_the_traceback(server):
    # llama-cpp-python answers a json_schema response format with a 500 quoting its traceback
    server.script(openai_error(500, TRACEBACK, type_="internal_server_error"), good("openai"))
    sleeps: list[float] = []
    e = engine(server, mode="native", sleeps=sleeps)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value) == (f"{e.who} refused the request (500): this server does not support JSON-schema output; "
                               "use the prompted mode.")
    assert len(server.requests) == 1 and sleeps == []  # never retried as if transient


@pytest.mark.parametrize(("status", "message", "mode", "hint"), [
    (400, "Unrecognized request argument supplied: max_completion_tokens", "tool", failures.NO_MAX_COMPLETION_TOKENS),
    (400, "'tools' is not supported by this server", "tool", failures.NO_TOOLS),
    (400, "System role not supported", "prompted", failures.NO_SYSTEM_ROLE),
    (422, "response_format: extra inputs are not permitted", "json_object", failures.NO_JSON_OBJECT),
])
def test_unsupported_options_name_the_setting_to_change(server, status, message, mode, hint):
    server.script(openai_error(status, message), good("openai"))
    e = engine(server, mode=mode)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value) == f"{e.who} refused the request ({status}): {hint}."
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 403, 422])
def test_other_4xx_answers_are_permanent(server, status):
    server.script(openai_error(status, "Field required: messages.0.content"), good("openai"))
    sleeps: list[float] = []
    with pytest.raises(UpstreamError):
        engine(server, sleeps=sleeps).draft(llm_pack())
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [408, 409])
def test_408_and_409_are_retried(server, status):
    server.script(openai_error(status, "try again"), good("openai"))
    sleeps: list[float] = []
    assert engine(server, sleeps=sleeps).draft(llm_pack()).sections["summary"] == GOOD["summary"]
    assert len(server.requests) == 2 and len(sleeps) == 1


def test_a_500_that_is_a_validation_error_is_not_retried(server):
    server.script(openai_error(500, "1 validation error for CreateChatCompletionRequest\nseed\n  Input should be a "
                                    "valid integer"), good("openai"))
    with pytest.raises(UpstreamError, match=r"refused the request as invalid \(500\): 1 validation error"):
        engine(server).draft(llm_pack())
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tool_mode_against_a_server_that_ignores_the_required_tool_call(server, provider):
    server.script(openai_text(json.dumps(GOOD)) if provider == "openai" else anthropic_text(json.dumps(GOOD)),
                  good(provider))
    e = engine(server, provider, mode="tool")
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value) == (f"{e.who} answered with plain text instead of the required tool call: this server "
                               "does not support tool calls; use the prompted mode.")
    assert len(server.requests) == 1  # no repair request: it would be ignored the same way


def test_tool_mode_text_that_runs_to_the_cap_is_still_named_as_missing_tool_support(server):
    # what llama-cpp-python did with Gemma 3 270M: no tool call, plain text until the cap
    server.script(openai_text("Sure! Here is the postmortem for the checkout incident. " * 60, finish="length"))
    e = engine(server, mode="tool")
    with pytest.raises(UpstreamError, match="this server does not support tool calls; use the prompted mode"):
        e.draft(llm_pack())


def test_anthropic_tool_use_that_closes_its_object_reads_the_usage(server):
    server.script(anthropic_tool_use(GOOD, usage=anthropic_usage(400, 90)))
    draft = engine(server, "anthropic").draft(llm_pack())
    assert (draft.audit.tokens_in, draft.audit.tokens_out) == (400, 90) and server.disconnects == 0


# --- provider options ---------------------------------------------------------------------------------------

def test_json_object_mode_sends_the_schema_for_grammar_constrained_output(server):
    server.script(openai_text("```json\n" + json.dumps(GOOD) + "\n```\nHope this helps."))
    draft = engine(server, mode="json_object").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]
    body = server.requests[0]["json"]
    sent = body["response_format"]
    assert sent["type"] == "json_object" and "tools" not in body and "tool_choice" not in body
    full = Sections.model_json_schema()
    # a grammar of the schema: every property required, no upper length bounds (they crashed llama-cpp-python)
    assert sent["schema"]["required"] == list(full["properties"]) and sent["schema"]["properties"].keys() == (
        full["properties"].keys())
    assert "maxLength" in json.dumps(full) and "maxLength" not in json.dumps(sent) and "maxItems" not in json.dumps(sent)
    assert sent["schema"]["$defs"]["ActionItem"]["required"] == list(full["$defs"]["ActionItem"]["properties"])


def test_prompted_mode_sends_no_response_format_and_repairs_a_wrong_object(server):
    server.script(openai_text(json.dumps({**GOOD, "severity": "SEV-9"})), openai_text(json.dumps(GOOD)))
    draft = engine(server, mode="prompted").draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"] and len(server.requests) == 2
    assert "response_format" not in server.requests[0]["json"]
    assert "severity" in json.dumps(server.requests[1]["json"]["messages"][-1])  # the repair names what was wrong


def test_max_tokens_param_by_endpoint_and_by_option():
    assert max_tokens_param(ProviderSpec(name="openai", model="m")) == "max_completion_tokens"
    assert max_tokens_param(ProviderSpec(name="openai", model="m", base_url="https://api.openai.com/v1")) == (
        "max_completion_tokens")
    assert max_tokens_param(ProviderSpec(name="openai", model="m", base_url="https://r.openai.azure.com",
                                         options={"api_version": "2024-10-21"})) == "max_completion_tokens"
    assert max_tokens_param(ProviderSpec(name="openai", model="m", base_url="http://127.0.0.1:8080/v1")) == "max_tokens"
    assert max_tokens_param(ProviderSpec(name="openai", model="m", base_url="http://127.0.0.1:8080/v1",
                                         options={"max_tokens_param": "max_completion_tokens"})) == (
        "max_completion_tokens")


def test_the_max_tokens_param_option_changes_the_field_sent(server):
    server.script(good("openai"))
    spec = ProviderSpec(name="openai", model="gpt-test", base_url=server.url + "/v1",
                        options={"max_tokens_param": "max_completion_tokens"})
    LLMEngine(spec, max_output_tokens=999, sleep=lambda s: None).draft(llm_pack())
    body = server.requests[0]["json"]
    assert body["max_completion_tokens"] == 999 and "max_tokens" not in body


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_instructions_in_the_user_message_for_chat_formats_without_a_system_role(server, provider):
    server.script(good(provider))
    e = engine(server, provider, instructions_in_user_message=True)
    draft = e.draft(llm_pack())
    body = server.requests[0]["json"]
    if provider == "openai":
        assert [m["role"] for m in body["messages"]] == ["user"]
        text = body["messages"][0]["content"]
    else:
        assert not body.get("system")
        content = body["messages"][0]["content"]
        text = content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)
    assert text.startswith("You are BlameTrail's postmortem writer.")
    assert text.endswith(draft.audit.prompt["user"])


# --- one rule for environment variables -------------------------------------------------------------------

async def _model_of(spec: ProviderSpec):
    async with async_client_v2(None) as http:
        return build_model(spec, http)


def test_the_sdks_unprefixed_variables_are_never_read(monkeypatch, server):
    import asyncio

    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    openai = asyncio.run(_model_of(ProviderSpec(name="openai", model="gpt-4o")))
    assert str(openai.base_url).startswith("https://api.openai.com/v1") and openai.client.api_key != "sk-from-env"
    anthropic = asyncio.run(_model_of(ProviderSpec(name="anthropic", model="claude-x")))
    assert str(anthropic.base_url).startswith("https://api.anthropic.com")
    assert anthropic.client.api_key != "sk-ant-from-env"
    assert server.requests == []
