"""Testing an AI configuration: one small schema-shaped request, reported in plain words (ai/probe.py), and the API
route that owners and admins use (`POST /api/v1/org/ai/test`)."""

from __future__ import annotations

import json

import pytest

from blametrail import db
from blametrail.ai import failures
from blametrail.ai.llm import LLMEngine
from blametrail.ai.models import AIConfig
from blametrail.ai.probe import ProbeResult, test_engine
from blametrail.ai.providers import ProviderSpec
from blametrail.ai.selection import UnavailableEngine
from blametrail.engines.builtin import BuiltinEngine
from tests.ai.wire import FakeProvider, anthropic_tool_use, openai_error, openai_text, openai_tool_call

URL = "/api/v1/org/ai/test"
RIGHT = {"status": "ok", "sum": 5}


@pytest.fixture
def server():
    with FakeProvider() as fp:
        yield fp


def _engine(server, provider="openai", **kwargs) -> LLMEngine:
    base = server.url + "/v1" if provider == "openai" else server.url
    spec = ProviderSpec(name=provider, model="m", base_url=base, api_key="sk-probe",
                        output_mode=kwargs.pop("mode", None))
    return LLMEngine(spec, sleep=lambda s: None, **kwargs)


# --- test_engine ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_working_model_reports_latency_and_structured_output(server, provider):
    server.script(openai_tool_call(RIGHT) if provider == "openai" else anthropic_tool_use(RIGHT))
    result = test_engine(_engine(server, provider))
    assert isinstance(result, ProbeResult)
    assert result.ok and result.structured_output and isinstance(result.latency_ms, int) and result.latency_ms >= 0
    assert "with valid structured output in tool mode (a tool call) and the right values." in result.detail
    body = server.requests[0]["json"]
    assert body["max_tokens"] <= 512 and body["stream"] is True  # small, and streamed like a draft
    props = (body["tools"][0]["function"]["parameters"] if provider == "openai" else body["tools"][0]["input_schema"])
    assert set(props["properties"]) == {"status", "sum"}


def test_a_model_that_answers_without_structure_is_ok_but_not_structured(server):
    server.script(openai_text("Hello! The sum is 5."))
    result = test_engine(_engine(server, mode="tool"))
    assert result.ok and not result.structured_output and result.latency_ms is not None
    assert failures.NO_TOOLS in result.detail and "answered in" in result.detail
    assert result.detail.count("OpenAI-compatible server at") == 1  # the provider is named once
    assert "tool mode (a tool call): it answered with plain text instead of the required tool call" in result.detail


def test_the_prompted_mode_is_tested_as_configured(server):
    server.script(openai_text("```json\n" + json.dumps({"status": "ok", "sum": 4}) + "\n```"))
    result = test_engine(_engine(server, mode="prompted"))
    assert result.ok and result.structured_output
    assert "prompted mode (the schema in the prompt), but it computed 2 + 3 = 4." in result.detail
    assert "tools" not in server.requests[0]["json"]


def test_a_refusal_is_not_ok_and_says_why_without_retrying(server):
    server.script(openai_error(401, "Incorrect API key provided: sk-probe"), openai_tool_call(RIGHT))
    result = test_engine(_engine(server, max_retries=3))
    assert not result.ok and not result.structured_output and result.latency_ms is None
    assert result.detail.endswith("rejected the API key (401).") and "sk-probe" not in result.detail
    assert len(server.requests) == 1

    server.replies.clear()
    server.script(openai_error(503, "overloaded"), openai_tool_call(RIGHT))
    assert not test_engine(_engine(server, max_retries=3)).ok and len(server.requests) == 2  # one request, no retry


def test_a_silent_server_ends_at_the_short_deadline(server):
    server.script({**openai_tool_call(RIGHT), "sleep": 3})
    result = test_engine(_engine(server), deadline_seconds=0.5)
    assert not result.ok and "the model did not answer within 0.5 s" in result.detail


def test_the_builtin_and_an_unavailable_engine():
    builtin = test_engine(BuiltinEngine())
    assert builtin.ok and builtin.latency_ms is None and "nothing to test" in builtin.detail
    missing = test_engine(UnavailableEngine("openai", None, "No model is configured for the openai engine."))
    assert not missing.ok and missing.detail == "No model is configured for the openai engine."


# --- the API route ------------------------------------------------------------------------------------------

def test_owners_and_admins_test_the_configuration_in_effect(client, factory):
    team = factory.team()
    for role in ("owner", "admin"):
        r = client.post(URL, headers=team[role].headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True, "latency_ms": None, "structured_output": True,
                            "detail": "The built-in engine drafts without a model; there is nothing to test."}
    for role in ("member", "viewer"):
        assert client.post(URL, headers=team[role].headers).status_code == 403
    assert client.post(URL).status_code == 401


def test_a_given_configuration_is_tested_and_nothing_is_stored(client, factory, rt, server):
    owner = factory.team()["owner"]
    server.script(openai_tool_call(RIGHT))
    r = client.post(URL, headers=owner.headers, json={
        "engine": "openai", "model": "gpt-test", "base_url": server.url + "/v1", "api_key": "sk-new",
        "output_mode": "tool", "options": {"max_tokens_param": "max_completion_tokens"}})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] and r.json()["structured_output"] and "sk-new" not in r.text
    sent = server.requests[0]
    assert sent["headers"]["authorization"] == "Bearer sk-new" and "max_completion_tokens" in sent["json"]
    assert client.get("/api/v1/org/ai", headers=owner.headers).json()["source"] == "installation"
    with db.transaction(rt.factory) as s:
        assert s.query(AIConfig).count() == 0


def test_the_stored_key_is_used_only_for_the_same_server(client, factory, server):
    owner = factory.team()["owner"]
    stored = {"engine": "openai", "model": "gpt-test", "base_url": server.url + "/v1", "api_key": "sk-stored"}
    client.put("/api/v1/org/ai", headers=owner.headers, json=stored).raise_for_status()
    server.script(openai_tool_call(RIGHT), openai_tool_call(RIGHT), openai_tool_call(RIGHT))
    without_key = {k: v for k, v in stored.items() if k != "api_key"}
    assert client.post(URL, headers=owner.headers, json={**without_key, "model": "gpt-other"}).json()["ok"]
    assert client.post(URL, headers=owner.headers).json()["ok"]  # no body: the stored configuration
    moved = {**without_key, "base_url": server.url.replace("127.0.0.1", "localhost") + "/v1"}
    assert client.post(URL, headers=owner.headers, json=moved).json()["ok"]
    keys = [req["headers"]["authorization"] for req in server.requests]
    assert keys == ["Bearer sk-stored", "Bearer sk-stored", "Bearer api-key-not-set"]  # never to another server


def test_an_invalid_configuration_is_422(client, factory):
    owner = factory.team()["owner"]
    cases = [
        ({"engine": "openai", "model": "m", "base_url": "http://169.254.169.254/v1"}, "base_url"),
        ({"engine": "anthropic", "model": "m", "output_mode": "json_object"}, "output_mode"),
        ({"engine": "openai", "model": "m", "options": {"max_tokens_param": "tokens"}}, "options.max_tokens_param"),
        ({"engine": "openai", "model": "m", "options": {"instructions_in_user_message": "yes"}},
         "options.instructions_in_user_message"),
        ({"engine": "openai", "model": "m", "options": {"deadline_seconds": 1}}, "options.deadline_seconds"),
    ]
    for body, where in cases:
        r = client.post(URL, headers=owner.headers, json=body)
        assert r.status_code == 422 and where in r.text, (body, r.text)


def test_the_route_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths[URL]) == {"post"}
