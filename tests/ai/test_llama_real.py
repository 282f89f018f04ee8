"""Opt-in: a real small model (Gemma 3 270M) behind llama-cpp-python's OpenAI-compatible server, end to end.

Install once with `scripts/llama-setup.sh`, then run
    BLAMETRAIL_TEST_LLAMA=1 python -m pytest -n 0 -s tests/ai/test_llama_real.py     (-n 0 -s: see the figures)
The tests start the server themselves (`scripts/llama-serve.sh` on a free port); BLAMETRAIL_TEST_LLAMA_URL=
http://127.0.0.1:<port>/v1 uses one already running instead. Each test configures an organization's model
through the real API, resolves an incident and lets the real generation job run with the real LLMEngine.

The model is a base model, not instruction-tuned: these tests prove the wiring (output cap honoured, the draft
deadline kept, schema-valid grammar-constrained output, grounding applied, errors in plain words, fallbacks
recorded as such), never the quality of a draft. Latency, tokens and what grounding removed are printed (-s).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from blametrail.clock import SystemClock
from blametrail.engines.sections import SECTION_KEYS, Sections
from blametrail.settings import Settings
from tests.factories import iso

pytestmark = pytest.mark.skipif(
    os.environ.get("BLAMETRAIL_TEST_LLAMA") != "1",
    reason="opt-in: set BLAMETRAIL_TEST_LLAMA=1 to run a real local model (install it with scripts/llama-setup.sh)")

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "scripts" / "llama-serve.sh"
MODEL = "gemma-3-270m"  # the alias scripts/llama-serve.sh gives the model
SERVER_CONTEXT = 8192  # the server's n_ctx: prompt budget + the answer and its repair fit with room to spare
PROMPT_BUDGET = 3_000  # the org's context_tokens (BlameTrail counts with cl100k; Gemma's tokenizer differs a little)
CAP = 1024  # the org's max_output_tokens: room for a complete Sections object from this model (~200-1,000 tokens)
CAP_SLACK = 1.3  # BlameTrail counts tokens with cl100k, the server with Gemma's tokenizer
# why: on this 2-core CPU the prompt alone (~2,000 tokens) takes 25-60 s to read and grammar-constrained writing
# runs at a few tokens/s, so the recipe raises the deadline, as docs/local-models.md advises for CPU inference
DEADLINE_SECONDS = 300.0
MARGIN_SECONDS = 15.0  # grounding, the built-in fallback and storing, on a busy 2-core machine
LOAD_TIMEOUT_SECONDS = 180.0

# why: llama-cpp-python's server knows only `max_tokens` (not `max_completion_tokens`), and some of its chat formats
# drop a system message. The grammar comes from the json_object output mode: `response_format` {"type":
# "json_object", "schema": …}
SERVER_OPTIONS = {"max_tokens_param": "max_tokens", "instructions_in_user_message": True}


# --- the server ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(base_url: str, proc: subprocess.Popen | None, log_path: Path | None) -> float:
    """Wait until the server lists its model; return the seconds it took (the model load)."""
    started = time.monotonic()
    while time.monotonic() - started < LOAD_TIMEOUT_SECONDS:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
            pytest.fail(f"llama server exited with {proc.returncode} (run scripts/llama-setup.sh first?):\n{tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama server at {base_url} did not answer within {LOAD_TIMEOUT_SECONDS:g} s")


@dataclass
class Llama:
    """A llama-cpp-python server: its base URL, and its process and log when this module started it."""

    url: str
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def check_alive(self) -> None:
        """Fail with the end of the server's log if the server died (llama.cpp crashes on some grammars)."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-1500:] if self.log_path else ""
            pytest.fail(f"the llama server died (exit {self.proc.returncode}) during the test; its log ends:\n{tail}")


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A running llama-cpp-python server with the Gemma 3 270M model (started here unless one is given)."""
    given = os.environ.get("BLAMETRAIL_TEST_LLAMA_URL")
    if given:
        _wait_ready(given.rstrip("/"), None, None)
        yield Llama(given.rstrip("/"))
        return
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    env = {**os.environ, "LLAMA_PORT": str(port), "LLAMA_CTX": str(SERVER_CONTEXT)}
    with log_path.open("wb") as log:
        # why: a session of its own, so the teardown stops exactly this server and nothing else
        proc = subprocess.Popen(["bash", str(SERVE)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Llama(f"http://127.0.0.1:{port}/v1", proc, log_path)
    try:
        load = _wait_ready(server.url, proc, log_path)
        print(f"\n[llama] server {server.url} ready in {load:.1f} s (n_ctx {SERVER_CONTEXT}); log {log_path}")
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    """The conftest settings, with the live summary's model calls spaced out: these tests time the draft alone."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, dev_mode=True, embedded_workers=0,
                    summary_min_interval_seconds=3600, _env_file=None)


@pytest.fixture
def rt(settings):
    """The conftest runtime, but on the real clock: the run's duration_ms is then the real time a draft took."""
    from blametrail.runtime import build_runtime

    runtime = build_runtime(settings, clock=SystemClock(), migrate=False, immediate=True, queue_url="memory://")
    yield runtime
    runtime.close()


# --- helpers ------------------------------------------------------------------------------------------------

def _configure(client, owner, base_url: str, *, output_mode: str, **options) -> None:
    body = {"engine": "openai", "model": MODEL, "base_url": base_url, "output_mode": output_mode,
            "options": {"context_tokens": PROMPT_BUDGET, "max_output_tokens": CAP, "timeout_seconds": DEADLINE_SECONDS,
                        "deadline_seconds": DEADLINE_SECONDS,
                        **SERVER_OPTIONS, **options}}
    r = client.put("/api/v1/org/ai", headers=owner.headers, json=body)
    assert r.status_code == 200, r.text


def _record_incident(client, m) -> int:
    """Record a small incident: a suspect deploy, three updates (one states the cause); return its id.

    Recorded before the organization's model is configured, so the live summary of each update is the built-in one
    and only the resolution asks the model (on a CPU every model call takes many seconds).
    """
    now = datetime.now(UTC).replace(microsecond=0)
    client.post("/api/v1/deploys", headers=m.headers, json={
        "service": "checkout", "environment": "production", "version": "v9.1.0",
        "deployed_at": iso(now - timedelta(minutes=40)),
        "commits": [{"sha": "a1b2c3d4e5", "author": "dev1", "message": "Cache cart totals in Redis",
                     "files": ["checkout/cart.py", "checkout/cache.py"]}]}).raise_for_status()
    iid = client.post("/api/v1/incidents", headers=m.headers, json={
        "title": "Checkout errors after the cart cache change", "services": ["checkout"],
        "started_at": iso(now - timedelta(minutes=35))}).json()["id"]
    for minutes, body in ((33, "Checkout error rate at 12%, investigating."),
                          (25, "Cause: the cart cache in v9.1.0 returns stale totals. Rolling back v9.1.0."),
                          (15, "Rollback of v9.1.0 complete; error rate back to 0.1%.")):
        client.post(f"/api/v1/incidents/{iid}/updates", headers=m.headers,
                    json={"body": body, "at": iso(now - timedelta(minutes=minutes))}).raise_for_status()
    return iid


def _resolve(client, m, iid: int) -> float:
    """Resolve the incident; return the wall-clock seconds it took (the immediate queue drafts inside it)."""
    started = time.monotonic()
    client.post(f"/api/v1/incidents/{iid}/resolve", headers=m.headers).raise_for_status()
    return time.monotonic() - started


def _outcome(client, owner, iid: int) -> tuple[dict, dict]:
    pm = client.get(f"/api/v1/incidents/{iid}/postmortem", headers=owner.headers).json()
    runs = client.get(f"/api/v1/incidents/{iid}/postmortem/runs", headers=owner.headers).json()
    assert pm["status"] == "draft", pm
    return pm, runs[0]


def _report(label: str, run: dict, resolve_seconds: float) -> None:
    grounding = (run.get("prompt") or {}).get("grounding")
    print(f"\n[llama] {label}: status={run['status']} engine={run['engine']} run={run['duration_ms']} ms "
          f"model={run['model_latency_ms']} ms resolve={resolve_seconds:.1f} s tokens_in={run['tokens_in']} "
          f"tokens_out={run['tokens_out']} prompt_tokens(cl100k)={(run.get('prompt') or {}).get('tokens')}")
    print(f"[llama] {label}: error={run['error']!r}")
    print(f"[llama] {label}: grounding={json.dumps(grounding, ensure_ascii=False)}")
    print(f"[llama] {label}: raw={(run.get('response_raw') or '')[:600]!r}")


def _assert_plain_words(error: str, base_url: str) -> None:
    """A stored error a person can act on: one short line naming the server, no traceback, no quoted body."""
    assert error.startswith(f"OpenAI-compatible server at {base_url}"), error
    assert "Traceback" not in error and "\n" not in error and len(error) <= 600, error
    assert "built-in engine's draft" in error, error


# --- the tests ----------------------------------------------------------------------------------------------

def test_grammar_constrained_draft_is_capped_in_time_schema_valid_and_grounded(client, factory, rt, llama):
    owner = factory.team()["owner"]
    iid = _record_incident(client, owner)
    _configure(client, owner, llama.url, output_mode="json_object")
    resolve_seconds = _resolve(client, owner, iid)
    llama.check_alive()  # the schema became a grammar the server could handle
    pm, run = _outcome(client, owner, iid)
    _report("json_object", run, resolve_seconds)

    Sections.model_validate(pm["sections"])  # whoever wrote it, the stored draft is schema-valid
    assert run["duration_ms"] <= (DEADLINE_SECONDS + MARGIN_SECONDS) * 1000  # the deadline was kept
    answers = run["response_raw"].split("\n---\n")  # the answer and, if any, its repair
    assert answers[0].lstrip().startswith("{"), answers[0][:200]  # the grammar held from the first character
    # the cap reached the server: it stopped there (slack: BlameTrail counts with cl100k, the server with Gemma's)
    assert 0 < run["tokens_out"] <= CAP * len(answers) * CAP_SLACK
    if run["status"] == "succeeded":
        assert pm["engine"] == f"openai:{MODEL}" and pm["error"] is None
        assert set(json.loads(answers[-1])) <= set(SECTION_KEYS)  # our keys only, as the grammar demands
        grounding = run["prompt"]["grounding"]  # grounding ran on the model's answer and says what it removed
        assert {"dropped_citations", "rejected_entries", "notes"} <= set(grounding)
    else:  # a base model may not close its JSON within the cap, or break a bound the grammar cannot express
        assert run["status"] == "fallback" and pm["engine"] == "builtin", run
        _assert_plain_words(pm["error"], llama.url)
        # the model failed, not the wiring: the server was reached and accepted the request
        assert "could not be reached" not in pm["error"] and "refused" not in pm["error"], pm["error"]


@pytest.mark.parametrize("output_mode", ["native", "tool"])
def test_a_mode_the_server_cannot_do_falls_back_in_plain_words(client, factory, rt, llama, output_mode):
    owner = factory.team()["owner"]
    iid = _record_incident(client, owner)
    _configure(client, owner, llama.url, output_mode=output_mode, max_output_tokens=256)
    resolve_seconds = _resolve(client, owner, iid)
    llama.check_alive()
    pm, run = _outcome(client, owner, iid)
    _report(output_mode, run, resolve_seconds)

    assert pm["engine"] == "builtin" and run["status"] == "fallback", run
    _assert_plain_words(pm["error"], llama.url)
    assert "prompted" in pm["error"], pm["error"]  # it says which mode to use instead
    assert "retr" not in pm["error"]  # a permanent refusal is not retried
    assert run["tokens_out"] is None or run["tokens_out"] <= 256
    assert run["duration_ms"] <= (DEADLINE_SECONDS + MARGIN_SECONDS) * 1000


def test_the_deadline_ends_a_long_answer_and_frees_the_server(client, factory, rt, llama):
    owner = factory.team()["owner"]
    deadline = 8.0
    # prompted mode without a grammar: the base model writes on until the (large) cap, far past the deadline
    iid = _record_incident(client, owner)
    _configure(client, owner, llama.url, output_mode="prompted", max_output_tokens=4096, deadline_seconds=deadline)
    resolve_seconds = _resolve(client, owner, iid)
    llama.check_alive()
    pm, run = _outcome(client, owner, iid)
    _report("deadline", run, resolve_seconds)

    assert pm["engine"] == "builtin" and run["status"] == "fallback", run
    _assert_plain_words(pm["error"], llama.url)
    assert f"within {deadline:g} s" in pm["error"], pm["error"]
    assert run["duration_ms"] <= (deadline + MARGIN_SECONDS) * 1000
    # the stream was closed, so the server stopped generating: a tiny request is answered at once, not queued
    started = time.monotonic()
    r = httpx.post(f"{llama.url}/chat/completions", timeout=120, json={
        "model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "Say OK."}]})
    waited = time.monotonic() - started
    print(f"[llama] deadline: a follow-up request took {waited:.1f} s")
    assert r.status_code == 200 and waited < deadline + MARGIN_SECONDS
