"""Pure parsers: GitHub deploy events and generic deploy webhook bodies into DeployCreate (no I/O, no clock)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import ValidationError

from blametrail.deploys.schemas import DeployCreate
from blametrail.errors import DomainError, ValidationFailed

GITHUB_DEPLOY_EVENTS = ("deployment_status", "push")
_MAX_COMMITS, _MAX_FILES, _MAX_MESSAGE = 1_000, 5_000, 20_000


class MalformedPayload(DomainError):
    """The body is not JSON (or not the form GitHub sends): nothing can be read from it."""

    slug, status, title = "malformed-payload", 400, "Malformed payload"


@dataclass(frozen=True)
class Parsed:
    """What a delivery asks for: record a deploy, acknowledge and ignore it, or just answer (ping)."""

    status: Literal["deploy", "ignored", "ok"]
    deploy: DeployCreate | None = None
    reason: str = ""


def load_json(body: bytes, content_type: str | None = None) -> dict:
    """Return the JSON object of a body (GitHub's form encoding `payload=<json>` too), or raise MalformedPayload."""
    if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload("The form body cannot be decoded; send JSON (Content-Type: application/json).") \
                from exc
        if len(form.get("payload", [])) != 1:
            raise MalformedPayload("The form body has no 'payload' field holding the JSON.")
        body = form["payload"][0].encode("utf-8")
    if not body.strip():
        raise MalformedPayload("The body is empty; send a JSON object.")
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise MalformedPayload("The body is not UTF-8 text; send a JSON object.") from exc
    except ValueError as exc:
        raise MalformedPayload(f"Malformed JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", [{"loc": ["body"], "msg": "not an object"}])
    return data


def _invalid(loc: list, msg: str) -> ValidationFailed:
    where = ".".join(str(p) for p in loc)
    return ValidationFailed(f"Invalid payload: {where}: {msg}.", [{"loc": loc, "msg": msg}])


def _obj(parent: dict, key: str, loc: list) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _invalid([*loc, key], "missing or not an object")
    return value


def _str(parent: dict, key: str, loc: list, required: bool = True) -> str | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        if not required:
            return None
        raise _invalid([*loc, key], "missing or not a string")
    return str(value)


def _timestamp(value: Any) -> datetime | str | None:
    """Return a pushed_at-style epoch as a UTC datetime; pass ISO strings through to the schema."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return value if isinstance(value, str) and value else None


def _build(fields: dict) -> DeployCreate:
    """Validate parsed fields as a deploy; schema errors become ValidationFailed (422)."""
    try:
        return DeployCreate.model_validate(fields)
    except ValidationError as exc:
        raise _from_pydantic(exc) from None


def _from_pydantic(exc: ValidationError) -> ValidationFailed:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    shown = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:5])
    return ValidationFailed(f"Invalid payload: {shown}.", errors)


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if isinstance(text, str) else text


def _environment_mismatch(environment: str | None, got: str) -> Parsed | None:
    if environment and got != environment:
        return Parsed("ignored", reason=f"environment {got!r} is not this webhook's environment {environment!r}")
    return None


def _deployment_service(deployment: dict, repo_name: str, default_service: str | None) -> str:
    payload = deployment.get("payload")
    if isinstance(payload, str):  # why: GitHub keeps whatever the creator sent, often a JSON string
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    if isinstance(payload, dict) and isinstance(payload.get("service"), str) and payload["service"].strip():
        return payload["service"].strip()
    return default_service or repo_name


def github_deployment_status(payload: dict, *, environment: str | None = None,
                             default_service: str | None = None) -> Parsed:
    """Parse a `deployment_status` event: a successful deployment is a deploy, other states are ignored."""
    status = _obj(payload, "deployment_status", [])
    deployment = _obj(payload, "deployment", [])
    repo = _obj(payload, "repository", [])
    state = _str(status, "state", ["deployment_status"])
    if state != "success":
        return Parsed("ignored", reason=f"deployment state is {state!r}; only 'success' records a deploy")
    env = _str(deployment, "environment", ["deployment"], required=False) or _str(status, "environment",
                                                                                  ["deployment_status"])
    if skipped := _environment_mismatch(environment, env):
        return skipped
    sha = _str(deployment, "sha", ["deployment"])
    ref = _str(deployment, "ref", ["deployment"], required=False)
    creator = deployment.get("creator") if isinstance(deployment.get("creator"), dict) else {}
    commit = {"sha": sha, "author": creator.get("login"), "files": [], "committed_at": None,
              "message": _clip(deployment.get("description") or "", _MAX_MESSAGE)}
    return Parsed("deploy", _build({
        "service": _clip(_deployment_service(deployment, _str(repo, "name", ["repository"]), default_service), 120),
        "environment": _clip(env, 64),
        "version": _clip(ref if ref and ref != sha else sha[:12], 200),
        "deployed_at": status.get("created_at") or deployment.get("updated_at"),
        "external_id": f"gh-deployment-status:{_str(status, 'id', ['deployment_status'])}",
        "url": _clip(status.get("target_url") or status.get("log_url") or status.get("environment_url"), 2000),
        "commits": [commit],
    }))


def _push_commit(c: Any, i: int) -> dict:
    if not isinstance(c, dict):
        raise _invalid(["commits", i], "not an object")
    author = c.get("author") if isinstance(c.get("author"), dict) else {}
    files: list[str] = []
    for key in ("added", "modified", "removed"):
        files.extend(f for f in (c.get(key) or []) if isinstance(f, str) and f not in files)
    return {"sha": _str(c, "id", ["commits", i]), "author": _clip(author.get("name") or author.get("username"), 320),
            "message": _clip(c.get("message") or "", _MAX_MESSAGE), "files": files[:_MAX_FILES],
            "committed_at": c.get("timestamp")}


def github_push(payload: dict, *, environment: str | None = None, default_service: str | None = None) -> Parsed:
    """Parse a `push` event: a push to the default branch is a deploy when the webhook names an environment."""
    repo = _obj(payload, "repository", [])
    ref = _str(payload, "ref", [])
    after = _str(payload, "after", [])
    branch = _str(repo, "default_branch", ["repository"], required=False) or "main"
    if ref != f"refs/heads/{branch}":
        return Parsed("ignored", reason=f"push to {ref}, not to the default branch {branch}")
    if payload.get("deleted") or set(after) == {"0"}:
        return Parsed("ignored", reason="the push deleted the branch")
    if not environment:
        return Parsed("ignored", reason="pushes record deploys only when the webhook has an environment set")
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise _invalid(["commits"], "not a list")
    head = payload.get("head_commit") if isinstance(payload.get("head_commit"), dict) else {}
    return Parsed("deploy", _build({
        "service": _clip(default_service or _str(repo, "name", ["repository"]), 120),
        "environment": environment,
        "version": after[:12],
        "deployed_at": _timestamp(repo.get("pushed_at")) or head.get("timestamp"),
        "external_id": f"gh-push:{after}",
        "url": _clip(payload.get("compare") or head.get("url"), 2000),
        "commits": [_push_commit(c, i) for i, c in enumerate(commits[:_MAX_COMMITS])],
    }))


def github_event(event: str | None, payload: dict, *, environment: str | None = None,
                 default_service: str | None = None) -> Parsed:
    """Parse one GitHub delivery by its X-GitHub-Event header."""
    if event == "ping":
        return Parsed("ok", reason="pong")
    if event == "deployment_status":
        return github_deployment_status(payload, environment=environment, default_service=default_service)
    if event == "push":
        return github_push(payload, environment=environment, default_service=default_service)
    return Parsed("ignored", reason=f"event {event!r} is not a deploy event (send deployment_status or push)")


def generic_deploy(payload: dict, *, environment: str | None = None, default_service: str | None = None) -> Parsed:
    """Parse a generic deploy webhook body: the POST /api/v1/deploys JSON (unknown fields are rejected)."""
    fields = dict(payload)
    if default_service and "service" not in fields:
        fields["service"] = default_service
    if environment and "environment" not in fields:
        fields["environment"] = environment
    deploy = _build(fields)
    if skipped := _environment_mismatch(environment, deploy.environment):
        return skipped
    return Parsed("deploy", deploy)
