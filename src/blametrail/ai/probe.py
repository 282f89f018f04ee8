"""Test an AI configuration: one small schema-shaped request under a short deadline, reported in plain words.

Used by the API (`POST /api/v1/org/ai/test`) and the organization's model page alike, through `test_config`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from blametrail.ai import service as ai_service
from blametrail.ai import tokens
from blametrail.ai.llm import Deadline, LLMEngine
from blametrail.ai.models import AIConfig
from blametrail.ai.prompt import Prompt
from blametrail.ai.selection import UnavailableEngine, engine_for
from blametrail.crypto import SecretBox
from blametrail.engines.base import Audit, Engine
from blametrail.engines.builtin import BuiltinEngine
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor
from blametrail.settings import Settings

PROBE_DEADLINE_SECONDS = 30.0  # at most; a configuration with a shorter deadline keeps its own
PROBE_OUTPUT_TOKENS = 512  # enough for the tiny answer, and for a model that thinks a little first
PROBE_VERSION = "probe-v1"
_MODE_WORDS = {"tool": "tool mode (a tool call)", "native": "native mode (a JSON-schema response format)",
               "prompted": "prompted mode (the schema in the prompt)",
               "json_object": "json_object mode (a JSON response format with the schema)"}


class ProbeAnswer(BaseModel):
    """The answer the test asks for: small, but a real schema with a constant and a computed field."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]
    sum: int


@dataclass(frozen=True)
class ProbeResult:
    """What a test found: the model answered (ok), how fast, whether its answer fit the schema, in plain words."""

    ok: bool
    latency_ms: int | None
    structured_output: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Return the API shape."""
        return asdict(self)


def _prompt() -> Prompt:
    schema = ProbeAnswer.model_json_schema()
    system = ("You are a connectivity test. Answer with a single JSON object, nothing before or after it, valid "
              f"against this JSON schema: {schema}. Set status to \"ok\" and sum to 2 + 3.")
    user = "This is BlameTrail testing its model configuration. Answer with the JSON object now."
    return Prompt(version=PROBE_VERSION, system=system, user=user, tokens=tokens.count(system) + tokens.count(user))


def test_engine(engine: Engine, *, deadline_seconds: float = PROBE_DEADLINE_SECONDS) -> ProbeResult:
    """Send one small schema-shaped request to the engine's model and report what happened (never raises)."""
    if isinstance(engine, BuiltinEngine):
        return ProbeResult(ok=True, latency_ms=None, structured_output=True,
                           detail="The built-in engine drafts without a model; there is nothing to test.")
    if isinstance(engine, UnavailableEngine):
        return ProbeResult(ok=False, latency_ms=None, structured_output=False, detail=engine.reason)
    if not isinstance(engine, LLMEngine):
        return ProbeResult(ok=False, latency_ms=None, structured_output=False,
                           detail=f"The {engine.label} engine cannot be tested from here.")
    probe = copy.copy(engine)  # why: one request, no retries, a small cap; the configured engine stays as it is
    probe.max_retries = 0
    probe.max_output_tokens = min(engine.max_output_tokens, PROBE_OUTPUT_TOKENS)
    seconds = min(engine.deadline_seconds, deadline_seconds)
    mode = _MODE_WORDS.get(probe.mode, probe.mode)
    audit = Audit(prompt_version=PROBE_VERSION)
    started = time.monotonic()
    try:
        answer = ProbeAnswer.model_validate(probe.ask(_prompt(), ProbeAnswer, audit=audit, deadline=Deadline(seconds)))
    except UpstreamError as exc:
        answered = audit.response_raw is not None
        latency = audit.latency_ms if answered else None
        if answered:
            said = str(exc).removeprefix(engine.who).lstrip(": ")
            return ProbeResult(ok=True, latency_ms=latency, structured_output=False, detail=(
                f"{engine.who} answered in {_seconds(latency)}, but not with valid structured output in "
                f"{mode}: it {said}"))
        return ProbeResult(ok=False, latency_ms=None, structured_output=False, detail=str(exc))
    latency = audit.latency_ms if audit.latency_ms is not None else int((time.monotonic() - started) * 1000)
    right = " and the right values" if answer.sum == 5 else f", but it computed 2 + 3 = {answer.sum}"
    return ProbeResult(ok=True, latency_ms=latency, structured_output=True, detail=(
        f"{engine.who} answered in {_seconds(latency)} with valid structured output in {mode}{right}."))


test_engine.__test__ = False  # type: ignore[attr-defined]  # why: pytest must not collect it when imported


def test_config(
    *, session: Session, actor: Actor, settings: Settings, box: SecretBox, config: dict[str, Any] | None = None,
    policy: OutboundPolicy | None = None,
) -> ProbeResult:
    """Test an AI configuration for the actor's organization (owners and admins); nothing is stored.

    `config` is shaped like the PUT body (engine, model, base_url, api_key, output_mode, options); without it the
    configuration in effect is tested. An omitted `api_key` uses the stored one only for the same engine and server.
    """
    require(actor.role, Action.MANAGE)
    stored = ai_service.get_config(session=session, org_id=actor.org_id)
    if config is None:
        return test_engine(engine_for(settings, stored, box))
    engine_name = config.get("engine")
    model, base_url, options = ai_service.validate(
        engine=engine_name, model=config.get("model"), base_url=config.get("base_url"),
        output_mode=config.get("output_mode"), options=config.get("options"), policy=policy)
    api_key = config.get("api_key")
    if api_key is not None:
        encrypted = box.encrypt(api_key.strip()) if api_key.strip() else None
    elif stored is not None and ai_service.keeps_key(stored, engine=engine_name, base_url=base_url):
        encrypted = stored.api_key_encrypted
    else:
        encrypted = None
    # why: a transient row, never added to the session: the test must not change the stored configuration
    candidate = AIConfig(org_id=actor.org_id, engine=engine_name, model=model, base_url=base_url,
                         api_key_encrypted=encrypted, output_mode=config.get("output_mode"), options=options)
    return test_engine(engine_for(settings, candidate, box))


test_config.__test__ = False  # type: ignore[attr-defined]  # why: pytest must not collect it when imported


def _seconds(ms: int | None) -> str:
    if ms is None:
        return "an unknown time"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
