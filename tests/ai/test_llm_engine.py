"""Engine selection (organization over installation), fallback through run_generation, audit and regeneration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail import db
from blametrail.ai.llm import LLMEngine
from blametrail.ai.models import AIConfig
from blametrail.ai.selection import UnavailableEngine, engine_for
from blametrail.crypto import SecretBox
from blametrail.engines.builtin import BuiltinEngine
from blametrail.postmortems.models import GenerationRun
from blametrail.settings import Settings
from tests.ai.test_providers import GOOD, FakeProvider, openai_error, openai_tool_call
from tests.conftest import START
from tests.factories import iso


@pytest.fixture
def server():
    with FakeProvider() as fp:
        # why: the live summary asks the same model while the incident is open; these tests script the postmortem
        fp.summary_reply = openai_error(400, "this test scripts postmortems only")
        yield fp


def _settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


# --- engine_for -------------------------------------------------------------------------------------

def test_installation_settings_select_the_engine():
    assert isinstance(engine_for(_settings()), BuiltinEngine)
    e = engine_for(_settings(ai_engine="anthropic", ai_model="claude-x", anthropic_api_key="k", ai_timeout_seconds=7,
                             ai_max_output_tokens=1000, ai_context_tokens=5000, ai_output_mode="prompted"))
    assert isinstance(e, LLMEngine) and e.label == "anthropic:claude-x"
    assert (e.spec.api_key, e.timeout_seconds, e.max_output_tokens, e.context_tokens, e.spec.output_mode) == (
        "k", 7, 1000, 5000, "prompted")


def test_a_provider_without_a_model_explains_itself():
    e = engine_for(_settings(ai_engine="openai"))
    assert isinstance(e, UnavailableEngine) and e.label == "openai:unset"


def test_azure_via_api_version():
    from blametrail.ai.providers import describe

    e = engine_for(_settings(ai_engine="openai", ai_model="gpt", openai_base_url="https://r.openai.azure.com",
                             openai_api_version="2024-10-21"))
    assert e.spec.options == {"api_version": "2024-10-21"}
    assert describe(e.spec) == "Azure OpenAI at https://r.openai.azure.com"


def _config(**kw) -> AIConfig:
    return AIConfig(org_id=1, engine=kw.pop("engine", "openai"), model=kw.pop("model", "m"), options=kw.pop("options", {}),
                    **kw)


def test_the_organization_config_wins_and_its_key_is_decrypted():
    box = SecretBox("k" * 32)
    config = _config(base_url="http://127.0.0.1:1/v1", api_key_encrypted=box.encrypt("sk-org"), output_mode="native",
                     options={"timeout_seconds": 9, "max_output_tokens": 777})
    e = engine_for(_settings(ai_engine="anthropic", ai_model="c", anthropic_api_key="sk-inst"), config, box)
    assert e.label == "openai:m" and e.spec.api_key == "sk-org" and e.spec.base_url == "http://127.0.0.1:1/v1"
    assert (e.timeout_seconds, e.max_output_tokens, e.spec.output_mode) == (9, 777, "native")
    assert isinstance(engine_for(_settings(ai_engine="openai", ai_model="x"), _config(engine="builtin")), BuiltinEngine)


def test_provider_options_reach_the_engine():
    config = _config(base_url="http://127.0.0.1:1/v1", output_mode="json_object", options={
        "deadline_seconds": 300, "instructions_in_user_message": True, "max_tokens_param": "max_completion_tokens"})
    e = engine_for(_settings(), config, SecretBox("k" * 32))
    assert (e.deadline_seconds, e.instructions_in_user_message, e.mode) == (300, True, "json_object")
    assert e.spec.options == {"max_tokens_param": "max_completion_tokens"}
    default = engine_for(_settings(ai_deadline_seconds=42), _config(), SecretBox("k" * 32))
    assert (default.deadline_seconds, default.instructions_in_user_message) == (42, False)


def test_installation_settings_for_a_self_hosted_server():
    e = engine_for(_settings(ai_engine="openai", ai_model="gemma", openai_base_url="http://127.0.0.1:8080/v1",
                             ai_output_mode="json_object", ai_deadline_seconds=600, ai_max_tokens_param="max_tokens",
                             ai_instructions_in_user_message=True))
    assert (e.deadline_seconds, e.instructions_in_user_message, e.mode) == (600, True, "json_object")
    assert e.spec.options == {"max_tokens_param": "max_tokens"}


def test_an_output_mode_the_provider_lacks_is_an_unavailable_engine():
    e = engine_for(_settings(ai_engine="anthropic", ai_model="claude-x", ai_output_mode="json_object"))
    assert isinstance(e, UnavailableEngine) and "json_object output mode does not work with the anthropic" in e.reason


def test_the_installation_key_never_goes_to_an_organizations_own_server():
    inst = _settings(ai_engine="openai", ai_model="x", openai_api_key="sk-inst")
    assert engine_for(inst, _config(base_url="http://evil.example/v1"), SecretBox("k" * 32)).spec.api_key is None
    assert engine_for(inst, _config(), SecretBox("k" * 32)).spec.api_key == "sk-inst"  # same endpoint: allowed


def test_an_undecryptable_org_key_is_an_unavailable_engine():
    config = _config(api_key_encrypted=SecretBox("a" * 32).encrypt("sk"))
    e = engine_for(_settings(), config, SecretBox("b" * 32))
    with pytest.raises(Exception, match="cannot be decrypted"):
        e.draft(None)


def test_runtime_resolves_the_org_engine(rt, factory, server):
    owner = factory.team()["owner"]
    with db.transaction(rt.factory) as s:
        assert isinstance(rt.engine_for_org(s, owner.actor.org_id), BuiltinEngine)
    _configure(rt, owner, server)
    with db.transaction(rt.factory) as s:
        e = rt.engine_for_org(s, owner.actor.org_id)
    assert isinstance(e, LLMEngine) and e.spec.api_key == "sk-bad" and e.spec.base_url == server.url + "/v1"


# --- through run_generation -----------------------------------------------------------------------

def _configure(rt, owner, server, **options):
    from blametrail.ai import service

    with db.transaction(rt.factory) as s:
        service.put(session=s, actor=owner.actor, box=rt.secret_box, now=rt.clock.now(), engine="openai",
                    model="gpt-test", base_url=server.url + "/v1", api_key="sk-bad",
                    options={"timeout_seconds": 5, "max_retries": 0, **options})


def _resolve_incident(client, m) -> int:
    client.post("/api/v1/deploys", headers=m.headers, json={
        "service": "checkout", "environment": "production", "version": "v9.1.0",
        "deployed_at": iso(START - timedelta(minutes=33)), "commits": []}).raise_for_status()
    iid = client.post("/api/v1/incidents", headers=m.headers, json={
        "title": "Checkout errors", "services": ["checkout"], "started_at": iso(START - timedelta(minutes=29))}).json()["id"]
    client.post(f"/api/v1/incidents/{iid}/updates", headers=m.headers, json={"body": "Rolling back v9.1.0"})
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=m.headers).raise_for_status()
    return iid


def test_provider_401_falls_back_to_the_builtin_draft_with_the_plain_error(client, factory, rt, server):
    team = factory.team()
    owner = team["owner"]
    _configure(rt, owner, server)
    server.script(openai_error(401, "Incorrect API key provided: sk-bad"))
    iid = _resolve_incident(client, owner)
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["status"] == "draft" and pm["engine"] == "builtin"
    assert f"OpenAI-compatible server at {server.url}/v1 rejected the API key (401)." in pm["error"]
    assert "built-in engine's draft" in pm["error"] and pm["sections"]["summary"]
    assert server.requests and server.requests[0]["headers"]["authorization"] == "Bearer sk-bad"

    run = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()[0]
    assert run["engine"] == "openai:gpt-test" and "rejected the API key (401)" in run["error"]
    assert run["status"] == "fallback"  # the built-in draft replaced the model's: never recorded as succeeded
    assert run["prompt"]["user"] and run["prompt_version"] and run["response_raw"] is None
    admin_run = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=team["admin"].headers).json()[0]
    assert admin_run["prompt"] == run["prompt"]
    for role in ("member", "viewer"):
        hidden = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=team[role].headers).json()[0]
        assert "prompt" not in hidden and "response_raw" not in hidden and hidden["error"] == run["error"]


def test_successful_llm_draft_stores_the_audit(client, factory, rt, server):
    team = factory.team()
    owner = team["owner"]
    _configure(rt, owner, server)
    answer = {**GOOD, "timeline": [], "root_cause": "Deploy v9.1.0 (evidence: deploy_1)."}
    server.script(openai_tool_call(answer))
    iid = _resolve_incident(client, owner)
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    assert pm["engine"] == "openai:gpt-test" and pm["error"] is None, pm
    assert pm["sections"]["summary"] == GOOD["summary"]
    with db.transaction(rt.factory) as s:
        run = s.query(GenerationRun).one()
        assert (run.tokens_in, run.tokens_out, run.status, run.step) == (120, 40, "succeeded", "storing")
        assert run.prompt["user"] and "Checkout errors" in run.prompt["user"]
        assert "summary" in run.response_raw and run.model_latency_ms is not None
    hidden = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=team["member"].headers).json()[0]
    assert hidden["tokens_in"] == 120 and "response_raw" not in hidden


def test_regeneration_sends_the_current_sections_and_edited_keys(client, factory, rt):
    owner = factory.team()["owner"]

    class Recording(BuiltinEngine):
        label = "recording"

        def __init__(self):
            self.contexts = []

        def draft(self, pack, context=None):
            self.contexts.append(context)
            return super().draft(pack, context)

    rt.engine_override = rec = Recording()
    iid = _resolve_incident(client, owner)
    url = f"/api/v1/incidents/{iid}/postmortem"
    pm = client.get(url, headers=owner.headers).json()
    assert rec.contexts[0].current_sections is None and rec.contexts[0].edited_keys == ()
    client.patch(url, headers=owner.headers, json={"version": pm["version"], "sections": {"summary": "Our words."}}
                 ).raise_for_status()
    rt.clock.advance(minutes=2)
    r = client.post(f"{url}/regenerate", headers=owner.headers)
    assert r.status_code == 202, r.text
    assert rec.contexts[1].current_sections["summary"] == "Our words."
    assert rec.contexts[1].edited_keys == ("summary",)
    rt.engine_override = None
