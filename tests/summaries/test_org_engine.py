"""The live summary is written by the organization's own model (through the real job, against a local server speaking
the OpenAI wire protocol), falls back to the built-in summary with the reason, and the model sees the same evidence
as the postmortem's, metrics and logs included."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from blametrail import db
from blametrail.ai import service as ai_service
from blametrail.engines.summary import SummaryOut
from blametrail.orgs import service as orgs
from tests.ai.wire import FakeProvider, openai_error, openai_tool_call
from tests.conftest import START
from tests.evidence.test_observability import _fake_connection
from tests.summaries.helpers import open_incident, row, run_scheduled

MODEL_SAYS = {"what_is_happening": "Checkout rejects card payments since the latest deploy.",
              "impact_so_far": "Card payments fail for most customers.", "suspects": [], "tried": [], "citations": []}


@pytest.fixture
def server():
    with FakeProvider() as fp:
        yield fp


def _configure(rt, owner, server) -> None:
    with db.transaction(rt.factory) as s:
        ai_service.put(session=s, actor=owner.actor, box=rt.secret_box, now=rt.clock.now(), engine="openai",
                       model="gpt-test", base_url=server.url + "/v1", api_key="sk-org",
                       options={"timeout_seconds": 5, "max_retries": 0})


def test_the_summary_is_written_by_the_organizations_model(client, factory, rt, server):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    server.script(openai_tool_call(MODEL_SAYS))
    iid = open_incident(client, owner)

    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=owner.headers).json()
    assert body["status"] == "ready" and body["engine"] == "openai:gpt-test" and body["error"] is None, body
    assert body["content"]["what_is_happening"] == MODEL_SAYS["what_is_happening"]
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent["headers"]["authorization"] == "Bearer sk-org"
    tool = sent["json"]["tools"][0]["function"]["parameters"]
    assert tool["properties"].keys() == SummaryOut.model_json_schema()["properties"].keys()  # the summary's schema


def test_a_failing_model_falls_back_to_the_builtin_summary_with_the_reason(client, factory, rt, server, caplog):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    server.script(openai_error(401, "Incorrect API key provided: sk-org"))
    with caplog.at_level(logging.WARNING, logger="blametrail.summaries.service"):
        iid = open_incident(client, owner, title="Payments degraded")
    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=owner.headers).json()
    assert body["status"] == "ready" and body["engine"] == "builtin"
    assert "Payments degraded" in body["content"]["what_is_happening"]
    assert body["error"].startswith("openai:gpt-test failed:") and "rejected the API key (401)" in body["error"]
    assert body["error"].endswith("This is the built-in summary instead.")
    assert server.requests  # the model was asked
    assert any(f"live summary of incident {iid}" in r.getMessage() and "openai:gpt-test failed" in r.getMessage()
               for r in caplog.records)  # one line in the server log per fallback


def test_an_organization_with_ai_off_gets_the_builtin_summary_and_no_model_call(client, factory, rt, server):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    with db.transaction(rt.factory) as s:
        orgs.set_ai_enabled(session=s, org_id=owner.actor.org_id, enabled=False)
    iid = open_incident(client, owner)
    body = client.get(f"/api/v1/incidents/{iid}/summary", headers=owner.headers).json()
    assert body["engine"] == "builtin" and body["error"] is None and server.requests == []


def test_the_model_sees_the_metrics_and_logs_the_postmortem_sees(client, factory, rt, server):
    owner = factory.team()["owner"]
    _configure(rt, owner, server)
    _fake_connection(rt, owner)
    answer = {**MODEL_SAYS, "suspects": [{"text": "The error rate jumped", "evidence": ["metric_1"]}],
              "citations": ["metric_1", "log_404"]}
    server.script(openai_tool_call(answer))
    iid = open_incident(client, owner, started_at=START - timedelta(minutes=29))
    prompt = " ".join(m.get("content") or "" for m in server.requests[0]["json"]["messages"]
                      if isinstance(m.get("content"), str))
    assert 'kind="metric"' in prompt and 'id="metric_1"' in prompt and "error_rate" in prompt
    assert 'kind="log"' in prompt and "connection pool exhausted" in prompt
    stored = row(rt, iid)
    assert stored.engine == "openai:gpt-test"
    assert stored.content["suspects"] == [{"text": "The error rate jumped", "evidence": ["metric_1"]}]
    assert stored.content["citations"] == ["metric_1"]  # grounded: an id the evidence does not hold is dropped
    assert stored.observations["metrics"][0]["id"] == "metric_1"

    # a rebuild reuses the cached metrics and logs: the model gets the same findings, the connector is not asked
    server.script(openai_tool_call(answer))
    rt.clock.advance(seconds=40)
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "Rolling back"}, headers=owner.headers)
    run_scheduled(rt)
    assert len(server.requests) == 2 and 'id="metric_1"' in str(server.requests[1]["json"]["messages"])
    assert row(rt, iid).observed_at == stored.observed_at
