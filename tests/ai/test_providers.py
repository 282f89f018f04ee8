"""Each provider against a local server speaking its real wire protocol, through the official SDK's client code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from blametrail.ai.llm import LLMEngine
from blametrail.ai.providers import ProviderSpec
from blametrail.engines.summary import SummaryOut
from blametrail.errors import UpstreamError
from tests.ai.wire import (  # noqa: F401  (re-exported: other test modules import them from here)
    FakeProvider,
    anthropic_error,
    anthropic_text,
    anthropic_tool_use,
    anthropic_usage,
    openai_error,
    openai_text,
    openai_tool_call,
    openai_usage,
)

ROOT = Path(__file__).resolve().parents[2]


# the local servers speaking the OpenAI and Anthropic wire protocols live in tests/ai/wire.py (also used elsewhere)


# --- evidence and answers ----------------------------------------------------------------------------

def llm_pack(**extra):
    """A small resolved incident: one update, one deploy with its commit, one firing alert."""
    from datetime import UTC, datetime, timedelta

    from blametrail.analysis.evidence import (
        AlertEvidence,
        CommitEvidence,
        DeployEvidence,
        EvidencePack,
        IncidentFacts,
        UpdateEvidence,
    )

    start = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    facts = IncidentFacts(id=1, title="Checkout errors", description="", severity="SEV-2", services=("checkout",),
                          started_at=start, resolved_at=start + timedelta(minutes=30), resolved_by="jo@example.test",
                          created_by="Jo")
    return EvidencePack(
        incident=facts, window_start=start - timedelta(hours=2), window_end=start + timedelta(minutes=30),
        updates=(UpdateEvidence(id="upd_1", at=start + timedelta(minutes=5), author="Jo",
                                body="Rolled back v9.1.0; errors dropping."),),
        deploys=(DeployEvidence(id="deploy_1", service="checkout", environment="production", version="v9.1.0",
                                deployed_at=start - timedelta(minutes=3), commits=(
                                    CommitEvidence(id="commit_1", sha="4e7a91c0", author="Jo",
                                                   message="Shrink the payment pool", files=("payments/pool.py",),
                                                   committed_at=None),)),),
        alerts=(AlertEvidence(id="alert_1", at=start + timedelta(minutes=1), name="CheckoutErrors", status="firing",
                              service="checkout", summary="5xx above 5%"),),
        extra=dict(extra),
    )


GOOD = {
    "summary": "Checkout returned errors for 30 minutes after deploy v9.1.0 (deploy_1).",
    "severity": "SEV-2",
    "customer_impact": {"description": "Some payments failed.", "duration_minutes": 999, "affected_services": ["x"]},
    "timeline": [
        {"at": "2026-11-26T09:27:00Z", "source": "deploy", "description": "v9.1.0 deployed", "evidence": ["deploy_1"]},
        {"at": "2026-11-26T09:31:00Z", "source": "alert", "description": "CheckoutErrors fired", "evidence": ["alert_1"]},
        {"at": "2026-11-26T09:35:00Z", "source": "update", "description": "Rolled back", "evidence": ["upd_1"]},
    ],
    "root_cause": "Commit 4e7a91c0 shrank the payment pool (evidence: deploy_1, commit_1).",
    "contributing_factors": ["No canary for checkout."],
    "what_went_well": ["Fast rollback."],
    "what_went_poorly": ["Alert fired late."],
    "action_items": [{"title": "Add a canary stage", "priority": "high", "suggested_owner": "checkout team"}],
    "confidence": {"level": "high", "reason": "Deploy right before onset; rollback fixed it."},
}


@pytest.fixture
def server():
    with FakeProvider() as fp:
        yield fp


def engine(fp: FakeProvider, provider: str = "openai", *, mode: str | None = None, sleeps: list | None = None,
           **kwargs) -> LLMEngine:
    base = fp.url + "/v1" if provider == "openai" else fp.url
    model = "gpt-test" if provider == "openai" else "claude-test"
    spec = ProviderSpec(name=provider, model=model, base_url=base, api_key="sk-test-123", output_mode=mode)
    opts = {"timeout_seconds": 5.0, "max_retries": 3, "retry_max_wait_seconds": 60.0, "max_output_tokens": 2048}
    opts.update(kwargs)
    return LLMEngine(spec, sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **opts)


def good(provider: str, answer: dict | None = None) -> dict:
    answer = answer or GOOD
    return openai_tool_call(answer) if provider == "openai" else anthropic_tool_use(answer)


def error(provider: str, status: int, message: str, headers=None) -> dict:
    if provider == "openai":
        kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return openai_error(status, message, type_=kind, headers=headers)
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
    return anthropic_error(status, message, type_=kind, headers=headers)


PROVIDERS = ["openai", "anthropic"]


# --- good answers -----------------------------------------------------------------------------------

def test_openai_tool_call_is_validated_grounded_and_audited(server):
    server.script(openai_tool_call(GOOD, usage=openai_usage(321, 77)))
    e = engine(server)
    draft = e.draft(llm_pack())
    sections = draft.sections
    assert sections["root_cause"].startswith("Commit 4e7a91c0")
    assert [row["evidence"] for row in sections["timeline"]] == [["deploy_1"], ["alert_1"], ["upd_1"]]
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer sk-test-123"
    body = req["json"]
    # a server other than OpenAI's own gets the output cap as max_tokens (llama.cpp-style servers ignore the other)
    assert body["model"] == "gpt-test" and body["max_tokens"] == 2048 and "max_completion_tokens" not in body
    assert body["stream"] is True
    assert body["tools"][0]["function"]["name"] == "final_result"
    assert "timeline" in body["tools"][0]["function"]["parameters"]["properties"]
    assert body["messages"][0]["role"] == "system"
    assert e.label == "openai:gpt-test"
    assert draft.audit.tokens_in == 321 and draft.audit.tokens_out == 77
    assert json.loads(draft.audit.response_raw)["summary"] == GOOD["summary"]
    assert draft.audit.prompt["user"] == body["messages"][-1]["content"] and draft.audit.prompt_version
    assert draft.audit.latency_ms is not None and draft.audit.latency_ms >= 0


def test_openai_native_mode_sends_a_json_schema_response_format(server):
    server.script(openai_text(json.dumps(GOOD)))
    sections = engine(server, mode="native").draft(llm_pack()).sections
    assert sections["summary"] == GOOD["summary"]
    body = server.requests[0]["json"]
    assert body["response_format"]["type"] == "json_schema"
    assert "timeline" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert "tools" not in body


def test_openai_prompted_mode_puts_the_schema_in_the_prompt_for_servers_like_llama_cpp(server):
    server.script(openai_text("```json\n" + json.dumps(GOOD) + "\n```"))
    sections = engine(server, mode="prompted").draft(llm_pack()).sections
    assert sections["summary"] == GOOD["summary"]
    body = server.requests[0]["json"]
    assert "tools" not in body and "response_format" not in body
    assert any("timeline" in str(m.get("content")) and "schema" in str(m.get("content")) for m in body["messages"])


def test_anthropic_tool_use_block_with_usage(server):
    server.script(anthropic_tool_use(GOOD, usage=anthropic_usage(400, 90)))
    e = engine(server, "anthropic")
    draft = e.draft(llm_pack())
    sections = draft.sections
    assert sections["summary"] == GOOD["summary"]
    (req,) = server.requests
    assert req["path"] == "/v1/messages"
    # the SDK sends the key as x-api-key (1.x) or as a bearer token (2.x)
    assert "sk-test-123" in (req["headers"].get("x-api-key", ""), req["headers"].get("authorization", "")[7:])
    assert "anthropic-version" in req["headers"]
    body = req["json"]
    assert body["max_tokens"] == 2048 and body["tools"][0]["name"] == "final_result"
    assert "timeline" in body["tools"][0]["input_schema"]["properties"]
    assert body["system"]
    assert (draft.audit.tokens_in, draft.audit.tokens_out) == (400, 90)
    assert e.label == "anthropic:claude-test"


def test_anthropic_prompted_mode_reads_a_text_block(server):
    server.script(anthropic_text(json.dumps(GOOD)))
    assert engine(server, "anthropic", mode="prompted").draft(llm_pack()).sections["summary"] == GOOD["summary"]
    assert "tools" not in server.requests[0]["json"]


# --- errors in plain words -------------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_says_the_key_was_rejected_and_is_not_retried(server, provider):
    server.script(error(provider, 401, "invalid x-api-key"))
    e = engine(server, provider)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    who = "Anthropic at" if provider == "anthropic" else "OpenAI-compatible server at"
    assert str(info.value) == f"{who} {e.spec.base_url} rejected the API key (401)."
    assert len(server.requests) == 1
    assert info.value.audit.prompt is not None and info.value.audit.response_raw is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_with_retry_after_waits_that_long_then_succeeds(server, provider):
    server.script(error(provider, 429, "slow down", headers={"retry-after": "2"}), good(provider))
    sleeps: list[float] = []
    sections = engine(server, provider, sleeps=sleeps).draft(llm_pack()).sections
    assert sections["summary"] == GOOD["summary"]
    assert sleeps == [2.0] and len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_that_never_ends_gives_up_after_the_retries(server, provider):
    server.script(*[error(provider, 429, "slow down", headers={"retry-after": "1"})] * 4)
    sleeps: list[float] = []
    e = engine(server, provider, sleeps=sleeps)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value).endswith("rate-limited the request (429) and kept refusing after 3 retries.")
    assert str(info.value).startswith(e.who)
    assert sleeps == [1.0, 1.0, 1.0] and len(server.requests) == 4


def test_retry_after_beyond_the_wait_budget_ends_at_once(server):
    server.script(error("openai", 429, "slow down", headers={"retry-after": "600"}))
    sleeps: list[float] = []
    with pytest.raises(UpstreamError) as info:
        engine(server, sleeps=sleeps, retry_max_wait_seconds=30).draft(llm_pack())
    assert "rate-limited the request (429)" in str(info.value) and "asked to wait 600 s" in str(info.value)
    assert sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500_then_success_backs_off_exponentially(server, provider):
    server.script(error(provider, 500, "internal"), error(provider, 503, "unavailable"), good(provider))
    sleeps: list[float] = []
    assert engine(server, provider, sleeps=sleeps).draft(llm_pack()).sections["summary"] == GOOD["summary"]
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_500_forever_names_the_server_error(server):
    server.script(*[error("openai", 500, "database on fire")] * 2)
    with pytest.raises(UpstreamError) as info:
        engine(server, max_retries=1).draft(llm_pack())
    assert "failed with a server error (500) after 1 retry: database on fire" in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_reported_with_the_limit(server, provider):
    server.script({"sleep": 2.0, **good(provider)})
    e = engine(server, provider, timeout_seconds=0.5)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value) == f"{e.who} timed out after 0.5 s."


def test_openai_truncated_tool_call_names_the_tokens_that_came_back_and_is_not_repaired(server):
    cut = json.dumps(GOOD)[:80]
    server.script(openai_tool_call(cut, finish="length", usage=openai_usage(120, 1_234)))
    e = engine(server)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value) == (f"{e.who} stopped after writing 1,234 tokens, before its JSON answer was complete "
                               "(output cap 2,048 tokens). Raise max_output_tokens, or use a model that answers more "
                               "briefly.")
    assert len(server.requests) == 1  # a truncated answer is not sent back for a repair that would truncate again


def test_openai_truncated_native_json_finish_reason_length(server):
    server.script(openai_text(json.dumps(GOOD)[:80], finish="length", usage=openai_usage(120, 2_048)))
    with pytest.raises(UpstreamError, match=r"stopped after writing 2,048 tokens, before its JSON answer was complete"):
        engine(server, mode="native").draft(llm_pack())
    assert len(server.requests) == 1


def test_anthropic_stop_reason_max_tokens_with_unfinished_input_is_truncated(server):
    server.script(anthropic_tool_use(GOOD, stop="max_tokens", usage=anthropic_usage(150, 2_048),
                                     raw_args=json.dumps(GOOD)[:120]))
    e = engine(server, "anthropic")
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    assert str(info.value).startswith(f"{e.who} stopped after writing 2,048 tokens, before its JSON answer was complete")
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_json_gets_one_repair_attempt_with_the_errors(server, provider):
    bad = {**GOOD, "severity": "catastrophic", "mood": "bad"}
    if provider == "openai":
        server.script(openai_tool_call('{"summary": "x", '), openai_tool_call(GOOD))
    else:
        server.script(anthropic_tool_use(bad), anthropic_tool_use(GOOD))
    e = engine(server, provider)
    draft = e.draft(llm_pack())
    assert draft.sections["summary"] == GOOD["summary"]
    assert len(server.requests) == 2
    repair = json.dumps(server.requests[1]["json"]["messages"][-1])
    assert ("Invalid JSON" in repair or "json_invalid" in repair) if provider == "openai" else "severity" in repair
    assert draft.audit.tokens_in == 2 * (120 if provider == "openai" else 150)
    assert "\n---\n" in draft.audit.response_raw  # both answers kept for the audit


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_json_twice_fails_with_a_short_reason(server, provider):
    if provider == "openai":
        server.script(openai_tool_call("not json"), openai_tool_call('{"summary": 5}'))
    else:
        server.script(anthropic_tool_use({"summary": 5}), anthropic_tool_use({"severity": "SEV-9"}))
    e = engine(server, provider)
    with pytest.raises(UpstreamError) as info:
        e.draft(llm_pack())
    message = str(info.value)
    assert message.startswith(f"{e.who} returned invalid JSON twice: ") and len(message) < 500
    assert len(server.requests) == 2


def test_prompt_above_the_budget_is_refused_before_sending(server, monkeypatch):
    import blametrail.ai.llm as llm_module

    real = llm_module.build_prompt

    def huge(pack, **kwargs):
        from dataclasses import replace
        return replace(real(pack, **kwargs), tokens=kwargs["budget_tokens"] + 1)

    monkeypatch.setattr(llm_module, "build_prompt", huge)
    with pytest.raises(UpstreamError, match="more than the budget of 5000"):
        engine(server, context_tokens=5000).draft(llm_pack())
    assert server.requests == []


def test_unreachable_server_is_named(server):
    spec = ProviderSpec(name="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(UpstreamError, match=r"OpenAI-compatible server at http://127.0.0.1:9/v1 could not be reached"):
        LLMEngine(spec, timeout_seconds=2, sleep=lambda s: None).draft(llm_pack())


def test_the_key_never_appears_in_the_spec_repr():
    assert "sk-secret" not in repr(ProviderSpec(name="openai", model="m", api_key="sk-secret"))


def test_summary_uses_the_summary_schema(server):
    schema = SummaryOut.model_json_schema()
    answer = {k: ("x" if v.get("type") == "string" else []) for k, v in schema["properties"].items()
              if k in schema.get("required", [])}
    server.script(openai_tool_call(answer))
    e = engine(server)
    out = e.summarize(llm_pack())
    assert isinstance(out.content, dict)
    assert server.requests[0]["json"]["tools"][0]["function"]["parameters"]["properties"].keys() == schema["properties"].keys()
    assert out.audit.prompt is not None


def test_web_start_up_does_not_import_pydantic_ai():
    code = ("import sys; import blametrail.app, blametrail.runtime, blametrail.ai.llm, blametrail.ai.providers.openai, "
            "blametrail.ai.providers.anthropic, blametrail.web.api.ai; "
            "from blametrail.ai.selection import engine_for; from blametrail.settings import Settings; "
            "engine_for(Settings(ai_engine='openai', ai_model='m', _env_file=None)); "
            "bad = [m for m in sys.modules if m.startswith(('pydantic_ai', 'openai', 'anthropic'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
