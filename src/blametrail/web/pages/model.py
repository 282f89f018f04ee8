"""The organization's drafting model page: what is in effect, the owner's form (key write-only), a live test.

Admins read it (never a key), only owners change it; members and viewers are refused like the API refuses them.
A change that sends drafts elsewhere or drops the stored key (another provider, another base URL, removing the
key) is confirmed first: app.js asks in the browser, and a post without the confirmation gets the question back
as a page, so the rule holds without JavaScript too.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import FormData

from blametrail import db, netguard
from blametrail.ai import probe
from blametrail.ai import service as ai
from blametrail.errors import ValidationFailed
from blametrail.orgs import service as orgs
from blametrail.orgs.permissions import Action, can, require
from blametrail.web.deps import NowDep, PageActor, RuntimeDep, SessionDep
from blametrail.web.pages import confirm as confirmation
from blametrail.web.pages.common import FormDep, field, flash, is_htmx, redirect, render

router = APIRouter(prefix="/settings")

PROVIDERS = {
    "builtin": ("Built-in engine", "Drafts from the evidence with BlameTrail's own rules: no model, nothing leaves "
                                   "this server, a draft in a second or two."),
    "openai": ("OpenAI or an OpenAI-compatible server", "OpenAI, Azure OpenAI, or a server speaking its API: "
                                                        "llama.cpp, Ollama, vLLM, LM Studio (set the base URL)."),
    "anthropic": ("Anthropic", "Claude models through Anthropic's Messages API."),
}
MODES = {
    "tool": "Tool call: the model must call a function whose arguments are the draft. OpenAI and Anthropic "
            "support it; many local servers do not.",
    "native": "JSON schema: the server constrains the answer to the draft's schema (OpenAI's structured outputs).",
    "prompted": "Prompted: the schema goes in the prompt and the answer is read as JSON. Works with any server; "
                "the least strict.",
    "json_object": "JSON object with a schema: prompted, and the server is asked for JSON that follows the schema "
                   "(llama.cpp's server enforces it with a grammar).",
}
# why: help for the options known today; an option the service adds later still gets a field, named from its key
OPTIONS: dict[str, tuple] = {  # key → (kind, label, help[, choices])
    "timeout_seconds": ("number", "Timeout of one request (seconds)",
                        "How long one request may take. CPU inference of a long draft can need minutes."),
    "max_retries": ("number", "Retries", "How often a request that failed for a passing reason is tried again."),
    "retry_max_wait_seconds": ("number", "Longest wait between retries (seconds)",
                               "A server asking to wait longer than this (Retry-After) ends the attempt."),
    "context_tokens": ("number", "Context window (tokens)",
                       "The model's context size: the evidence sent is cut to fit it with the answer."),
    "max_output_tokens": ("number", "Output cap (tokens)", "The most the model may write for one draft."),
    "deadline_seconds": ("number", "Deadline for a whole draft (seconds)",
                         "Every request, the repair and the retries share it; past it the built-in draft is stored. "
                         "Raise it for a model running on a CPU."),
    "max_tokens_param": ("choice", "Output cap field",
                         "The request field that carries the output cap. Default: max_completion_tokens for OpenAI's "
                         "own API, max_tokens for other servers (llama.cpp, vLLM and Ollama ignore the other one).",
                         ("max_tokens", "max_completion_tokens")),
    "instructions_in_user_message": ("bool", "Instructions in the user message",
                                     "For chat formats without a system role (llama-cpp-python's gemma format "
                                     "drops system messages): the instructions go at the top of the user message."),
    "api_version": ("text", "API version (Azure OpenAI)", "For Azure OpenAI only, e.g. 2024-10-21."),
    "azure_endpoint": ("url", "Azure endpoint", "For Azure OpenAI only: https://<resource>.openai.azure.com"),
}
TEST_ACTION = Action.MANAGE  # who may run the live test: as the API's POST /api/v1/org/ai/test
LABELS = {"engine": "Provider", "model": "Model", "base_url": "Base URL", "api_key": "API key",
          "output_mode": "Output mode", "options": "Options"}


def _options() -> list[dict]:
    """Return the option fields, in the service's order, with their kind, label and help."""
    rows = []
    for key in ai.ENGINE_OPTIONS:
        kind, label, hint, *choices = OPTIONS.get(key, ("auto", key.replace("_", " ").capitalize(), ""))
        rows.append({"key": key, "kind": kind, "label": label, "hint": hint, "choices": choices[0] if choices else ()})
    return rows


def _shown(read: dict) -> dict:
    """Hide credentials written into a URL (an installation setting, or a row stored before they were refused)."""
    options = dict(read.get("options") or {})
    if isinstance(options.get("azure_endpoint"), str):
        options["azure_endpoint"] = netguard.redact_userinfo(options["azure_endpoint"])
    return {**read, "base_url": read.get("base_url") and netguard.redact_userinfo(read["base_url"]), "options": options}


def _key_state(read: dict, installation: dict) -> str:
    """Say in words which key drafts use: the organization's (write-only), the installation's, or none."""
    if read["source"] == "installation":
        return "installation" if read["has_api_key"] else "none"
    if read["has_api_key"]:
        return "set"
    same_server = read["engine"] == installation["engine"] and (read["base_url"] or None) in (
        None, installation["base_url"] or None)
    return "installation" if same_server and installation["has_api_key"] else "none"


def _values(read: dict) -> dict:
    """Return the form's values for a configuration (never a key)."""
    return {"engine": read["engine"], "model": read["model"] or "", "base_url": read["base_url"] or "",
            "output_mode": read["output_mode"] or "", "remove_key": False,
            "options": {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in (read.get("options") or {}).items()}}


def _page(request: Request, *, session, actor, rt, values: dict | None = None, errors: list[str] | None = None,
          confirm: list[str] | None = None, result: dict | None = None, key_typed: bool = False,
          typed_result: dict | None = None, confirm_reset: bool = False, status_code: int = 200):
    require(actor.role, Action.MANAGE)
    read = _shown(ai.read(session=session, actor=actor, settings=rt.settings))
    installation = ai.to_read(settings=rt.settings, config=None)
    org = orgs.get_org(session=session, org_id=actor.org_id)
    return render(request, "model.html", {
        "nav": "settings", "tab": "model", "config": read, "key_state": _key_state(read, installation),
        "values": values or _values(read), "errors": errors or [], "confirm": confirm or [], "result": result,
        "typed_result": typed_result,
        "key_typed": key_typed, "can_save": can(actor.role, Action.ORG_SETTINGS), "ai_enabled": org.ai_enabled,
        "can_test": can(actor.role, TEST_ACTION), "confirm_reset": confirm_reset,
        "providers": PROVIDERS, "modes": {m: MODES.get(m, m) for m in ai.OUTPUT_MODES}, "options": _options(),
        "labels": LABELS,
    }, actor=actor, status_code=status_code)


def _option_value(kind: str, raw: str):
    """Read one option as typed: blank is 'use the default'; numbers and yes/no become their types."""
    if raw == "":
        return None
    if kind in ("number", "auto"):
        try:
            number = float(raw)
        except ValueError:
            if kind == "number":
                return raw  # why: the service names the allowed range in its refusal
        else:
            return int(number) if number.is_integer() else number
    if kind in ("bool", "auto") and raw.lower() in ("true", "false", "yes", "no"):
        return raw.lower() in ("true", "yes")
    return raw


def _typed_options(values: dict) -> dict:
    kinds = {o["key"]: o["kind"] for o in _options()}
    return {k: v for k, raw in values["options"].items() if (v := _option_value(kinds[k], raw)) is not None}


def _read_form(form: FormData) -> dict:
    return {"engine": field(form, "engine"), "model": field(form, "model"), "base_url": field(form, "base_url"),
            "output_mode": field(form, "output_mode"), "remove_key": field(form, "remove_key") in ("on", "1", "yes"),
            "options": {o["key"]: field(form, f"opt_{o['key']}") for o in _options()}}


def _risks(values: dict, read: dict, *, key_typed: bool) -> list[str]:
    """Name what this change does that deserves a second look: drafts going elsewhere, a key dropped."""
    risks = []
    if values["engine"] not in ai.ENGINES:
        return risks  # why: nothing to confirm about a provider that does not exist; validation says so
    names = {k: v[0] for k, v in PROVIDERS.items()}
    if values["engine"] != read["engine"]:
        risks.append(f"Drafts will be sent to {names.get(values['engine'], values['engine'])} instead of "
                     f"{names.get(read['engine'], read['engine'])}.")
    has_own_key = read["source"] == "organization" and read["has_api_key"]
    if values["remove_key"] and has_own_key:
        risks.append("The stored API key will be removed; requests are sent without a key.")
    elif has_own_key and not key_typed and (values["engine"] != read["engine"]
                                            or (values["base_url"] or None) != (read["base_url"] or None)):
        risks.append("The stored API key will be removed: a key never follows the configuration to another server.")
    return risks


def _messages(exc: ValidationFailed) -> list[str]:
    errors = exc.extra.get("errors") or []
    if not errors:
        return [exc.detail]
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        if loc[:1] == ["options"] and len(loc) > 1:
            where = OPTIONS.get(loc[1], (None, loc[1].replace("_", " ").capitalize()))[1]
        else:
            where = LABELS.get(loc[0], loc[0]) if loc else ""
        msg = str(e.get("msg", "invalid"))
        out.append(f"{where}: {msg}" if where else msg)
    return out


@router.get("/model")
def model_page(request: Request, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    return _page(request, session=session, actor=actor, rt=rt)


@router.post("/model")
def model_save(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep, now: NowDep):
    require(actor.role, Action.ORG_SETTINGS)
    values = _read_form(form)
    key = str(form.get("api_key") or "").strip()
    read = _shown(ai.read(session=session, actor=actor, settings=rt.settings))
    if key and values["remove_key"]:
        return _page(request, session=session, actor=actor, rt=rt, values=values, key_typed=True, status_code=422,
                     errors=["API key: type a new key or remove the stored one, not both."])
    risks = _risks(values, read, key_typed=bool(key))
    if risks and not confirmation.confirmed(form):
        # why: no JavaScript asked; the question comes back as a page (the typed key is not echoed into it)
        return _page(request, session=session, actor=actor, rt=rt, values=values, confirm=risks,
                     key_typed=bool(key), status_code=409)
    options = _typed_options(values)
    try:
        ai.put(session=session, actor=actor, box=rt.secret_box, now=now, engine=values["engine"],
               model=values["model"], base_url=values["base_url"],
               api_key="" if values["remove_key"] else (key or None), output_mode=values["output_mode"] or None,
               options=options, policy=netguard.policy_from(rt.settings))
    except ValidationFailed as exc:
        db.rollback(session)
        return _page(request, session=session, actor=actor, rt=rt, values=values, errors=_messages(exc),
                     key_typed=bool(key), status_code=422)
    flash(request, "Model settings saved. Test them to see how the model answers.", "success")
    return redirect("/settings/model")


@router.post("/model/reset")
def model_reset(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    require(actor.role, Action.ORG_SETTINGS)
    if not confirmation.confirmed(form):
        return _page(request, session=session, actor=actor, rt=rt, confirm_reset=True, status_code=409)
    ai.delete(session=session, actor=actor)
    flash(request, "The organization's own model settings and key were removed; drafts use the installation's "
                   "settings again.", "success")
    return redirect("/settings/model")


def _result(outcome: probe.ProbeResult) -> dict:
    """Put a test's outcome in plain words: a headline, then what happened and what to change."""
    took = "" if outcome.latency_ms is None else (
        f" in {outcome.latency_ms} ms" if outcome.latency_ms < 1000 else f" in {outcome.latency_ms / 1000:.1f} s")
    if outcome.ok and outcome.latency_ms is None:
        headline = "Nothing to test."
    elif outcome.ok and outcome.structured_output:
        headline = f"It works: the model answered{took} with structured output drafts can use."
    elif outcome.ok:
        headline = f"The model answered{took}, but not in the structure drafts need."
    else:
        headline = "The test failed: no usable answer came back."
    lines = [outcome.detail]
    if outcome.ok and not outcome.structured_output:
        lines.append("Drafts from this configuration would fall back to the built-in draft. Try another output mode "
                     "(prompted works with any server) or a larger model.")
    return {"ok": outcome.ok and outcome.structured_output, "headline": headline, "lines": lines,
            "latency_ms": outcome.latency_ms, "structured_output": outcome.structured_output}


@router.post("/model/test")
def model_test(request: Request, form: FormDep, actor: PageActor, session: SessionDep, rt: RuntimeDep):
    """Test the settings in effect, or (from the owner's form) the settings typed, before saving them."""
    require(actor.role, TEST_ACTION)
    typed = "engine" in form
    values = _read_form(form) if typed else None
    key = str(form.get("api_key") or "").strip()
    config = None
    if values is not None:
        config = {"engine": values["engine"], "model": values["model"], "base_url": values["base_url"],
                  "api_key": "" if values["remove_key"] else (key or None),
                  "output_mode": values["output_mode"] or None, "options": _typed_options(values)}
    # why: end the request's transaction before waiting on a model, as the connection test does: a login stamp
    # must not hold SQLite's write lock (or a PostgreSQL transaction) for as long as the model takes
    db.commit(session)
    try:
        outcome = probe.test_config(session=session, actor=actor, settings=rt.settings, box=rt.secret_box,
                                    config=config, policy=netguard.policy_from(rt.settings))
    except ValidationFailed as exc:
        db.rollback(session)
        result = {"ok": False, "headline": "These settings cannot be tested yet.", "lines": _messages(exc)}
    else:
        result = _result(outcome)
    if is_htmx(request):
        return render(request, "_model_test_result.html", {"result": result}, actor=actor, full_page=False)
    return _page(request, session=session, actor=actor, rt=rt, values=values, result=None if typed else result,
                 typed_result=result if typed else None, key_typed=bool(key) and typed)
