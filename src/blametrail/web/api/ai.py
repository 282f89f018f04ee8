"""The organization's AI configuration in the JSON API: owners write it, admins read it; the key is never returned."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from blametrail import netguard
from blametrail.ai import service as ai
from blametrail.web.deps import ApiActor, NowDep, RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/org/ai", tags=["organization"])


class AIConfigPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: Literal["builtin", "openai", "anthropic"]
    model: str | None = Field(None, max_length=200)
    base_url: str | None = Field(None, max_length=2000)
    api_key: str | None = Field(None, max_length=4000, description="Stored encrypted; omit to keep the stored key, "
                                "send an empty string to remove it. Never returned.")
    output_mode: Literal["tool", "native", "prompted"] | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="timeout_seconds, max_retries, "
                                    "retry_max_wait_seconds, context_tokens, max_output_tokens, api_version, azure_endpoint")


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


@router.delete("", status_code=204)
def delete_ai_config(actor: ApiActor, session: SessionDep):
    """Go back to the installation's AI settings (owner only)."""
    ai.delete(session=session, actor=actor)
    return Response(status_code=204)
