"""The organization's AI configuration in the JSON API: owners write it, admins read it; the key is never returned."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail import db, netguard
from blametrail.ai import probe
from blametrail.ai import service as ai
from blametrail.orgs.permissions import Action, require
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/org/ai", tags=["organization"])


class AIConfigPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: Literal[ai.ENGINES]  # type: ignore[valid-type]  # why: derived from the provider registry
    model: str | None = Field(None, max_length=200)
    base_url: str | None = Field(None, max_length=2000)
    api_key: str | None = Field(None, max_length=4000, description="Stored encrypted; omit to keep the stored key, "
                                "send an empty string to remove it. Never returned.")
    output_mode: Literal[ai.OUTPUT_MODES] | None = None  # type: ignore[valid-type]
    options: dict[str, Any] = Field(default_factory=dict, description="timeout_seconds, max_retries, "
                                    "retry_max_wait_seconds, context_tokens, max_output_tokens, deadline_seconds, "
                                    "max_tokens_param (max_tokens | max_completion_tokens), "
                                    "instructions_in_user_message (true | false), api_version, azure_endpoint "
                                    "(docs/models.md)")


class AITestResult(BaseModel):
    ok: bool = Field(description="The model answered (reachable, key accepted, model known).")
    latency_ms: int | None = Field(description="How long the answer took; null when none came.")
    structured_output: bool = Field(description="The answer was valid JSON for the schema in the output mode.")
    detail: str = Field(description="What happened, in plain words, and what to change if something failed.")


@router.get("")
def get_ai_config(actor: ApiActor, session: SessionDep, rt: RuntimeDep):
    """Return the AI configuration in effect (the organization's own, else the installation's)."""
    return _shown(ai.read(session=session, actor=actor, settings=rt.settings))


@router.put("")
def put_ai_config(data: AIConfigPut, actor: ApiActor, session: SessionDep, now: NowDep, rt: RuntimeDep):
    """Set the organization's own engine, model, endpoint and key (owner only)."""
    config = ai.put(session=session, actor=actor, box=rt.secret_box, now=now, engine=data.engine, model=data.model,
                    base_url=data.base_url, api_key=data.api_key, output_mode=data.output_mode, options=data.options,
                    policy=netguard.policy_from(rt.settings))
    return _shown(ai.to_read(settings=rt.settings, config=config))


def _shown(read: dict) -> dict:
    """Hide credentials written into a URL (an installation setting, or a row stored before they were refused)."""
    options = dict(read.get("options") or {})
    if isinstance(options.get("azure_endpoint"), str):
        options["azure_endpoint"] = netguard.redact_userinfo(options["azure_endpoint"])
    return {**read, "base_url": read.get("base_url") and netguard.redact_userinfo(read["base_url"]), "options": options}


@router.post("/test", response_model=AITestResult)
def test_ai_config(actor: ApiActor, session: SessionDep, rt: RuntimeDep, data: AIConfigPut | None = None):
    """Send one small schema-shaped request with the given configuration (else the one in effect); store nothing.

    Owners and admins. Answers 200 whether or not the model worked: `ok`, `latency_ms`, `structured_output` and
    `detail` say what happened in plain words.
    """
    config = data.model_dump(exclude_unset=False) if data is not None else None
    require(actor.role, Action.MANAGE)
    # why: end the transaction before the model call (up to 30 s), so it never holds SQLite's write lock (the token's
    # last-used stamp, the Idempotency-Key) or an idle PostgreSQL transaction meanwhile
    db.commit(session)
    result = probe.test_config(session=session, actor=actor, settings=rt.settings, box=rt.secret_box, config=config,
                               policy=netguard.policy_from(rt.settings))
    return result.to_json()


@router.delete("", status_code=204)
def delete_ai_config(actor: ApiActor, session: SessionDep):
    """Go back to the installation's AI settings (owner only)."""
    ai.delete(session=session, actor=actor)
    return Response(status_code=204)
