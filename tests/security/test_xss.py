"""Stored XSS: hostile text in every user-writable field, and in the model's output, renders inert on every page.

The text fields are derived from the OpenAPI request schemas: a body is synthesized for every writing operation
with the payload in each string field (falling back, field by field, to the most hostile variant its validation
accepts), so a field added later is covered without touching this test. Alert and deploy webhooks carry the
payload in every leaf of real sender payloads; the organization's name goes in through the setup page. Then every
page reachable from the incident list and the settings pages is crawled (links and htmx fragments) and checked
with BeautifulSoup: no inline or foreign <script>, no on* attribute, no javascript:/data: URL, no injected
element; the payload shows up as text. The Markdown export is rendered to HTML and checked the same way.
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from blametrail import db
from blametrail.orgs import service as orgs
from tests.alerts.test_parsers import ALERTMANAGER_FIRING, GENERIC_FIRING, GRAFANA_FIRING
from tests.deploys.test_parsers import PUSH_MAIN
from tests.deploys.test_receivers import GENERIC, sign
from tests.security.conftest import API, FAKE_SERIES, PASSWORD
from tests.web.test_pages import login, post

PIECES = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "[click](javascript:alert(1))",
    "' onmouseover='alert(1)",
    "{{ 1337*3 }}${1337*3}",
)
PAYLOAD = "".join(PIECES)  # 129 characters
URLISH = ("javascript:alert(1)", "https://x.example/<script>alert(1)</script>", "https://x.example/?q=%22%3E%3Csvg")
EVAL = re.compile(r"\b4011\b")  # what {{ 1337*3 }} or ${1337*3} would become if a template evaluated it
DANGEROUS_URL = re.compile(r"^(javascript:|vbscript:|data:(?!,$))", re.I)  # data:, is base.html's empty favicon
URL_ATTRS = ("href", "src", "action", "formaction", "xlink:href", "hx-get", "hx-post", "hx-put", "hx-delete",
             "hx-patch", "poster", "background", "srcset")
T = "2026-11-26T09:40:00Z"


# --- the assertions ---------------------------------------------------------------------------------------------

def assert_inert(html: str, where: str) -> BeautifulSoup:
    """Fail on anything in the document that could run script."""
    doc = BeautifulSoup(html, "html.parser")
    for script in doc.find_all("script"):
        src = script.get("src") or ""
        assert src.startswith("/static/") and not (script.string or "").strip(), f"{where}: foreign script {script}"
    for el in doc.find_all(True):
        handlers = [a for a in el.attrs if a.lower().startswith("on")]
        assert not handlers, f"{where}: event handler attribute {handlers} on <{el.name}>"
        for attr in URL_ATTRS:
            value = el.get(attr)
            if isinstance(value, str):
                squeezed = re.sub(r"[\x00-\x20]", "", value)
                assert not DANGEROUS_URL.match(squeezed), f"{where}: {attr}={value!r} on <{el.name}>"
    for tag in ("iframe", "object", "embed", "base", "svg", "math"):
        found = doc.find_all(tag)
        if tag == "svg":  # why: the metric evidence page and the analytics page draw their own charts; only those
            found = [el for el in found if el.parent is None or not {"metric-chart", "analytics-chart"}
                     & set(el.parent.get("class") or []) or el.find_all(["script", "foreignobject", "a"])]
        assert not found, f"{where}: injected <{tag}>"
    assert not doc.select("img[src=x]"), f"{where}: injected <img>"
    assert not doc.select("meta[http-equiv]"), f"{where}: injected <meta http-equiv>"
    assert not EVAL.search(doc.get_text()), f"{where}: a template evaluated the payload"
    return doc


def shows_payload(doc: BeautifulSoup) -> bool:
    text = doc.get_text()
    return any(piece in text for piece in PIECES)


# --- writing the payload through the API, derived from the OpenAPI request schemas ------------------------------

def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def synthesize(spec: dict, schema: dict, text: str, path: tuple = ()) -> object:
    """A body for this schema with `text` in every free string field (enums, dates and numbers valid)."""
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(spec, s) for s in schema[key] if _resolve(spec, s).get("type") != "null"]
            strings = [s for s in options if s.get("type") == "string" and "enum" not in s and "format" not in s]
            return synthesize(spec, (strings or options)[0], text, path)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        out = {name: synthesize(spec, sub, text, (*path, name)) for name, sub in props.items()}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and _resolve(spec, extra).get("type") == "string":
            out[f"label {text[:40]}"] = text  # a free-form map of strings (credentials, labels)
        return out
    if kind == "array":
        return [synthesize(spec, schema.get("items", {}), text, (*path, 0))]
    if kind == "string":
        if schema.get("format") == "date-time":
            return T
        return text
    if kind in ("integer", "number"):
        return schema.get("default") or schema.get("minimum") or 1
    if kind == "boolean":
        return True
    return None


def text_fields(spec: dict, schema: dict, path: tuple = ()) -> set[tuple]:
    """The paths of the free string fields in a request schema ([] for list items, * for map values)."""
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return set().union(*(text_fields(spec, s, path) for s in schema[key]))
    if "enum" in schema or "const" in schema:
        return set()
    out: set[tuple] = set()
    for name, sub in schema.get("properties", {}).items():
        out |= text_fields(spec, sub, (*path, name))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and _resolve(spec, extra).get("type") == "string":
        out.add((*path, "*"))
    if schema.get("type") == "array":
        out |= text_fields(spec, schema.get("items", {}), (*path, "[]"))
    if schema.get("type") == "string" and schema.get("format") != "date-time":
        out.add(path)
    return out


def _set(body, loc: list, value) -> bool:
    if not loc:
        return False
    target = body
    for part in loc[:-1]:
        if isinstance(target, dict) and part in target or isinstance(target, list) and isinstance(part, int) \
                and part < len(target):
            target = target[part]
        else:
            return False
    last = loc[-1]
    if isinstance(target, dict) and last in target or isinstance(target, list) and isinstance(last, int):
        target[last] = value
        return True
    return False


def _get(body, loc: list):
    for part in loc:
        body = body[part]
    return body


def _fallbacks(original, loc: list) -> list:
    """What a field that refused the whole payload gets instead, most hostile first; last its sender's own value."""
    options = [*URLISH, *PIECES, f"{PIECES[0]}@x.example"]
    try:
        options.append(_get(original, loc) if original is not None else "plain-value")
    except (KeyError, IndexError, TypeError):
        options.append("plain-value")
    return options


def write(client, method: str, url: str, body, headers: dict, *, content_for=None,
          original=None) -> tuple[object, dict]:
    """Send the body; on 422 replace each refused field by the most hostile variant it accepts (a map refused as a
    whole, or a field refusing everything, is left out). Return the last response and the body it answered."""
    body = copy.deepcopy(body)
    tried: dict[str, int] = {}
    for _ in range(40):
        data = json.dumps(body).encode()
        extra = content_for(data) if content_for else {}
        r = client.request(method, url, content=data, headers={"Content-Type": "application/json", **headers, **extra})
        if r.status_code != 422:
            return r, body
        changed = False
        for error in r.json().get("errors") or []:
            loc = list(error["loc"])
            loc = loc[1:] if loc[:1] == ["body"] else loc
            try:
                current = _get(body, loc)
            except (KeyError, IndexError, TypeError):
                continue
            n = tried[json.dumps(loc)] = tried.get(json.dumps(loc), -1) + 1
            options = _fallbacks(original, loc)
            if isinstance(current, dict) or n >= len(options):
                changed |= _set(body, loc[:-1], _without(body, loc))
            else:
                changed |= _set(body, loc, [options[n]] if isinstance(current, list) else options[n])
        if not changed:
            return r, body
    return r, body


def _without(body, loc: list):
    parent = copy.deepcopy(_get(body, loc[:-1]))
    if isinstance(parent, dict):
        parent.pop(loc[-1], None)
    return parent


STRUCTURAL = ("default_branch", "master_branch", "version", "status", "startsAt", "endsAt", "starts_at", "timestamp",
              "sha", "id", "after", "before", "ref", "committed_at", "deployed_at", "fingerprint", "tree_id")


def _hostile_leaves(value):
    """A copy of a sender's payload with every free string leaf carrying the payload, and a hostile label."""
    if isinstance(value, dict):
        out = {k: (v if k in STRUCTURAL else _hostile_leaves(v)) for k, v in value.items()}
        if isinstance(value.get("labels"), dict):
            out["labels"] = {**out["labels"], "runbook": PAYLOAD, PIECES[1]: PIECES[0]}
        return out
    if isinstance(value, list):
        return [_hostile_leaves(v) for v in value]
    if isinstance(value, str):
        return PAYLOAD
    return value


# --- the scenario -----------------------------------------------------------------------------------------------

@pytest.fixture
def hostile_org(app, client, factory, rt, clock):
    """An organization whose every text field carries the payload, through the API, the webhooks and setup."""
    with db.transaction(rt.factory) as s:
        token = orgs.create_setup_token(session=s, now=clock.now())
    with TestClient(app) as setup:
        setup.headers["accept"] = "text/html"
        r = post(setup, "/setup", {"token": token, "org_name": PAYLOAD, "org_slug": "xss", "email": "first@xss.test",
                                   "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303, r.text
    owner = factory.member("xss", "owner", password=PASSWORD)
    h = owner.headers
    spec = app.app.openapi()
    written: dict[str, set] = {}

    def api(method: str, path: str, params: dict | None = None, fixed: dict | None = None) -> dict:
        op = spec["paths"][path][method.lower()]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = synthesize(spec, schema, PAYLOAD)
        for key, value in (fixed or {}).items():
            body[key] = value
        url = path.format(**(params or {}))
        r, sent = write(client, method, url, body, h)
        assert r.status_code < 300, f"{method} {url}: {r.status_code} {r.text[:500]}\n{json.dumps(sent)[:1500]}"
        written.setdefault(f"{method} {path}", set()).update(
            json.dumps(p) for p, v in _paths(sent) if isinstance(v, str) and any(x in v for x in (*PIECES, *URLISH)))
        return r.json() if r.content else {}

    deploy = api("POST", f"{API}/deploys", fixed={"service": "checkout", "deployed_at": "2026-11-26T09:35:00Z",
                                                  "commits": [{"sha": "4e7a91c0", "author": PAYLOAD,
                                                               "message": PAYLOAD, "files": [PAYLOAD],
                                                               "committed_at": "2026-11-26T09:00:00Z"}]})
    api("POST", f"{API}/deploys", fixed={"external_id": "hostile", "commits": [
        {"sha": "5f8b02d1", "author": PAYLOAD, "message": PAYLOAD, "files": [PAYLOAD]}]})
    incident = api("POST", f"{API}/incidents", fixed={"services": ["checkout", PIECES[0] + PIECES[1]],
                                                      "started_at": "2026-11-26T09:38:00Z"})
    iid = incident["id"]
    api("POST", f"{API}/incidents/{{incident_id}}/updates", {"incident_id": iid}, fixed={"at": "2026-11-26T09:45:00Z"})
    monitor = api("POST", f"{API}/monitors", fixed={"url": "https://checkout.example/" + PIECES[0],
                                                    "timeout_seconds": 5, "interval_seconds": 60})
    api("PATCH", f"{API}/monitors/{{monitor_id}}", {"monitor_id": monitor["id"]},
        fixed={"url": "https://checkout.example/" + PIECES[0], "timeout_seconds": 5, "interval_seconds": 60,
               "expected_statuses": [200]})
    hooks = {}
    for kind in ("alertmanager", "grafana", "generic_alert", "github", "generic_deploy"):
        deploys_only = {"environment": "production"} if kind in ("github", "generic_deploy") else {}
        hooks[kind] = api("POST", f"{API}/webhooks", fixed={"kind": kind, **deploys_only})
    connection = api("POST", f"{API}/connections", fixed={
        "provider": "prometheus", "endpoint": f"http://127.0.0.1:9/{PIECES[0]}", "credentials": {"token": PAYLOAD},
        "options": {"timeout_seconds": 2}})
    api("PATCH", f"{API}/connections/{{connection_id}}", {"connection_id": connection["id"]},
        fixed={"endpoint": f"http://127.0.0.1:9/{PIECES[0]}", "credentials": {"token": PAYLOAD}, "options": None})
    # a fake backend whose log lines and series carry the payload into the evidence and the draft
    client.post(f"{API}/connections", headers=h, json={
        "name": f"fake {PIECES[0]}{PIECES[1]}", "provider": "fake", "options": {
            "series": [{**FAKE_SERIES[0], "name": "error_rate"}],
            "logs": [{"at": "2026-11-26T09:41:00Z", "service": "checkout", "text": f"ERROR {PAYLOAD}"}] * 3},
        "signals": [{"name": "error_rate", "query": PAYLOAD, "services": ["checkout"]},
                    {"name": "errors", "kind": "log", "query": PAYLOAD, "services": ["checkout"]}]}).raise_for_status()
    api("POST", f"{API}/org/tokens")
    api("POST", f"{API}/org/members", fixed={
        "role": "member", "password": None, "email": '"><img/src=x/onerror=alert(1)><script>alert(1)</script>@x.test'})
    api("PUT", f"{API}/org/ai", fixed={"engine": "builtin", "output_mode": None, "options": {}})

    # the senders: alerts with hostile labels and annotations, deploys with hostile commits
    for kind, path, sample in (("alertmanager", "alertmanager", ALERTMANAGER_FIRING),
                               ("grafana", "grafana", GRAFANA_FIRING), ("generic_alert", "alerts", GENERIC_FIRING),
                               ("generic_deploy", "deploys", GENERIC)):
        body = _hostile_leaves(sample)
        if kind == "generic_deploy":
            body = {**body, "environment": "production", "external_id": "x-1"}
        r, _ = write(client, "POST", f"/webhooks/{path}/{hooks[kind]['url'].rsplit('/', 1)[1]}", body,
                     {"Authorization": f"Bearer {hooks[kind]['secret']}"}, original=sample)
        assert r.status_code == (201 if kind == "generic_deploy" else 200), f"{kind}: {r.status_code} {r.text[:400]}"
    gh = hooks["github"]
    r, _ = write(client, "POST", f"/webhooks/github/{gh['url'].rsplit('/', 1)[1]}", _hostile_leaves(PUSH_MAIN),
                 {"X-GitHub-Event": "push"}, content_for=lambda data: {"X-Hub-Signature-256": sign(gh["secret"], data)},
                 original=PUSH_MAIN)
    assert r.status_code == 201, f"github: {r.status_code} {r.text[:400]}"

    # resolve (the built-in engine drafts from the hostile evidence), then a person edits every section
    assert client.post(f"{API}/incidents/{iid}/resolve", headers=h).status_code == 200
    pm = client.get(f"{API}/incidents/{iid}/postmortem", headers=h).json()
    assert pm["sections"] is not None, pm
    api("PATCH", f"{API}/incidents/{{incident_id}}/postmortem", {"incident_id": iid}, fixed={"version": pm["version"]})
    return {"owner": owner, "incident": iid, "spec": spec, "written": written, "deploy": deploy["id"]}


def _paths(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for v in value:
            yield from _paths(v, (*path, "[]"))
    else:
        yield path, value


# Fields that cannot hold markup (a pattern or a fixed word list) or are never shown (passwords; test_secrets.py);
# every other free string field must have carried the payload.
NO_MARKUP = {
    "POST /api/v1/deploys": {'["commits", "[]", "sha"]'},  # hex
    "POST /api/v1/connections": {'["signals", "[]", "name"]'},  # [A-Za-z0-9_.:- ]
    "PATCH /api/v1/connections/{connection_id}": {'["signals", "[]", "name"]'},
    "POST /api/v1/org/members": {'["role"]', '["password"]'},  # owner|admin|member|viewer; write-only
    # extra sections' keys come from the template (a generated key is refused): test_extra_sections_render_inert
    "PATCH /api/v1/incidents/{incident_id}/postmortem": {'["sections", "extra", "*"]'},
}


def assert_every_text_field_carried_the_payload(hostile_org) -> None:
    """Guard the derivation: each free string field of each writing operation really received hostile text."""
    spec, written = hostile_org["spec"], hostile_org["written"]
    missing = {}
    for label, carried in written.items():
        method, path = label.split(" ", 1)
        schema = spec["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        wanted = {json.dumps(list(p)) for p in text_fields(spec, schema)} - NO_MARKUP.get(label, set())
        gap = {w for w in wanted if not any(_matches(json.loads(w), json.loads(c)) for c in carried)}
        if gap:
            missing[label] = sorted(gap)
    assert not missing, f"text fields that never carried the payload: {missing}"


def _matches(wanted: list, carried: list) -> bool:
    return len(wanted) == len(carried) and all(w in ("*", c) for w, c in zip(wanted, carried))


def crawl(c: TestClient, roots: list[str], limit: int = 200) -> dict[str, BeautifulSoup]:
    """GET every same-site page and htmx fragment reachable from the roots; check each one."""
    seen: dict[str, BeautifulSoup] = {}
    queue = deque(roots)
    while queue and len(seen) < limit:
        url = queue.popleft()
        if url in seen:
            continue
        r = c.get(url)
        assert r.status_code < 500, f"{url}: {r.status_code}"
        if "text/html" not in r.headers.get("content-type", ""):
            seen[url] = BeautifulSoup("", "html.parser")
            continue
        doc = seen[url] = assert_inert(r.text, url)
        for el in doc.find_all(["a", *[t.name for t in doc.select("[hx-get]")]]):
            for attr in ("href", "hx-get"):
                target = el.get(attr)
                if not isinstance(target, str) or target.startswith(("#", "mailto:")):
                    continue
                full = urljoin(url, target)
                parts = urlsplit(full)
                if parts.netloc not in ("", "testserver") or parts.path.startswith(("/static", "/logout", "/docs")):
                    continue
                nxt = parts.path + (f"?{parts.query}" if parts.query else "")
                if nxt not in seen:
                    queue.append(nxt)
    return seen


SKIP_FORMS = re.compile(r"/(logout|login|setup|delete|remove|revoke|rotate|disable|enable|publish|resolve|test)$")


def submit_every_form(c: TestClient, pages: dict[str, BeautifulSoup]) -> set[str]:
    """Post each page's forms with the payload in every text input: what comes back (the saved object, or the form
    re-rendered with its errors, which echoes the input) must be inert too. Return the actions submitted."""
    done: set[str] = set()
    for url, doc in pages.items():
        for form in doc.select("form[method=post]"):
            action = urljoin(url, form.get("action") or url)
            path = urlsplit(action).path
            if path in done or SKIP_FORMS.search(path):
                continue
            data: dict[str, list[str]] = {}
            for el in form.select("input[name], textarea[name], select[name]"):
                kind = (el.get("type") or "text").lower()
                if el.name == "select":
                    option = el.select_one("option[selected]") or el.select_one("option")
                    value = option.get("value", option.text) if option else ""
                elif el.name == "textarea" or kind in ("text", "url", "email", "search", "password"):
                    value = PAYLOAD
                elif kind == "checkbox" and not el.has_attr("checked"):
                    continue
                else:
                    value = el.get("value", "")
                data.setdefault(el["name"], []).append(value)
            r = c.post(path, data=data)
            assert r.status_code < 500, f"form {path}: {r.status_code}"
            if "text/html" in r.headers.get("content-type", ""):
                assert_inert(r.text, f"form {path} answered {r.status_code}")
            done.add(path)
    return done


def test_every_page_renders_the_stored_payload_inert(app, hostile_org):
    assert_every_text_field_carried_the_payload(hostile_org)
    owner, iid = hostile_org["owner"], hostile_org["incident"]
    with TestClient(app) as c:
        c.headers["accept"] = "text/html,application/xhtml+xml"
        assert login(c, owner.email).status_code == 303
        pages = crawl(c, ["/incidents", f"/incidents/{iid}", "/settings", "/settings/monitors", "/settings/webhooks",
                          "/settings/connections", "/settings/members", "/settings/tokens",
                          f"/incidents/{iid}/postmortem/print"])
        md = c.get(f"/incidents/{iid}/postmortem/export.md")
        submitted = submit_every_form(c, pages)
    assert {"/incidents", "/settings/monitors", "/settings/webhooks", "/settings/connections", "/settings/members",
            "/settings/tokens", f"/incidents/{iid}/updates", f"/incidents/{iid}/postmortem/edit"} <= submitted, submitted
    must_show = [u for u in pages if u.rstrip("/") in (
        "/incidents", f"/incidents/{iid}", "/settings", "/settings/monitors", "/settings/webhooks",
        "/settings/connections", "/settings/members", "/settings/tokens", f"/incidents/{iid}/postmortem/print",
        f"/incidents/{iid}/postmortem/edit", f"/incidents/{iid}/postmortem/revisions")]
    assert len(must_show) == 11, sorted(pages)
    assert not [u for u in must_show if not shows_payload(pages[u])], "pages that never showed the payload as text"
    evidence = [u for u in pages if "/evidence/" in u]
    kinds = {re.sub(r"_\d+$", "", u.rsplit("/", 1)[1]) for u in evidence}
    assert kinds >= {"upd", "st", "alert", "deploy", "commit"}, kinds
    assert any(shows_payload(pages[u]) for u in evidence)
    assert len(pages) >= 25, sorted(pages)
    assert md.status_code == 200 and PIECES[0].replace("<", "&lt;").replace(">", "&gt;") in md.text
    assert_inert(MarkdownIt("commonmark").render(md.text), "export.md rendered as HTML")


# --- model output ----------------------------------------------------------------------------------------------

def test_model_output_with_the_payload_in_every_section_renders_inert(app, client, factory):
    from tests.ai.test_providers import GOOD, FakeProvider, openai_tool_call

    slug = factory.org()
    owner = factory.member(slug, "owner", password=PASSWORD)
    h = owner.headers
    with FakeProvider() as server:
        r = client.put(f"{API}/org/ai", headers=h, json={
            "engine": "openai", "model": "gpt-test", "base_url": server.url + "/v1", "api_key": "sk-test",
            "options": {"timeout_seconds": 5, "max_retries": 0}})
        assert r.status_code == 200, r.text
        iid = client.post(f"{API}/incidents", headers=h, json={"title": "Checkout errors", "services": ["checkout"],
                                                               "started_at": "2026-11-26T09:30:00Z"}).json()["id"]
        upd = client.post(f"{API}/incidents/{iid}/updates", headers=h,
                          json={"body": "Rolling back"}).json()["evidence_id"]
        cite = f" (evidence: {upd})"
        answer = {**GOOD,
                  "summary": PAYLOAD + cite, "root_cause": PAYLOAD + cite,
                  "customer_impact": {"description": PAYLOAD, "duration_minutes": 5, "affected_services": [PAYLOAD]},
                  "timeline": [{"at": "2026-11-26T09:40:00Z", "source": "update", "description": PAYLOAD,
                                "evidence": [upd]}],
                  "contributing_factors": [PAYLOAD + cite], "what_went_well": [PAYLOAD + cite],
                  "what_went_poorly": [PAYLOAD + cite],
                  "action_items": [{"title": PAYLOAD, "priority": "high", "suggested_owner": PAYLOAD}],
                  "confidence": {"level": "medium", "reason": PAYLOAD + cite}}
        server.script(openai_tool_call(answer))
        assert client.post(f"{API}/incidents/{iid}/resolve", headers=h).status_code == 200
        pm = client.get(f"{API}/incidents/{iid}/postmortem", headers=h).json()
        assert pm["engine"] == "openai:gpt-test" and pm["error"] is None, pm
        assert PIECES[0] in json.dumps(pm["sections"]), "the hostile sections survived grounding"
    # a person saves it once (history gets an edit next to the draft)
    client.patch(f"{API}/incidents/{iid}/postmortem", headers=h,
                 json={"version": pm["version"], "sections": {"summary": PAYLOAD + cite}}).raise_for_status()
    with TestClient(app) as c:
        c.headers["accept"] = "text/html,application/xhtml+xml"
        assert login(c, owner.email).status_code == 303
        base = f"/incidents/{iid}/postmortem"
        pages = crawl(c, [f"/incidents/{iid}", f"{base}/card", f"{base}/edit", f"{base}/revisions",
                          f"{base}/original", f"{base}/print"], limit=60)
        for url in (f"/incidents/{iid}", f"{base}/card", f"{base}/edit", f"{base}/revisions", f"{base}/original",
                    f"{base}/print"):
            assert shows_payload(pages[url]), f"{url} never showed the model's text"
        md = c.get(f"{base}/export.md")
    assert md.status_code == 200
    assert_inert(MarkdownIt("commonmark").render(md.text), "export.md of the model's draft")


def test_extra_sections_render_inert(client, factory):
    """The template's extra sections carry hostile text into the editor and the Markdown export, inert there."""
    from tests.web.test_pages import drafted_incident  # noqa: F401

    owner = factory.member(factory.org(plan="pro"), "owner", password=PASSWORD)
    h = owner.headers
    client.put(f"{API}/org/template", headers=h, json={"extra_sections": [
        {"key": "notes", "title": PAYLOAD, "instruction": PAYLOAD}]}).raise_for_status()
    iid = client.post(f"{API}/incidents", headers=h, json={"title": "x", "services": ["checkout"]}).json()["id"]
    client.post(f"{API}/incidents/{iid}/updates", headers=h, json={"body": "rolled back"}).raise_for_status()
    assert client.post(f"{API}/incidents/{iid}/resolve", headers=h).status_code == 200
    pm = client.get(f"{API}/incidents/{iid}/postmortem", headers=h).json()
    client.patch(f"{API}/incidents/{iid}/postmortem", headers=h, json={
        "version": pm["version"], "sections": {"extra": {"notes": PAYLOAD}}}).raise_for_status()
    md = client.get(f"{API}/incidents/{iid}/postmortem/export.md", headers=h)
    assert md.text.count("onmouseover") == 2  # the title and the text both reached the export, escaped
    assert_inert(MarkdownIt("commonmark").render(md.text), "export.md with an extra section")
    c = TestClient(client.app)
    c.headers["accept"] = "text/html,application/xhtml+xml"
    assert login(c, owner.email).status_code == 303
    for url in (f"/incidents/{iid}/postmortem/edit", f"/incidents/{iid}/postmortem/edit?section=extra:notes",
                "/settings/template"):
        page = c.get(url)
        assert page.status_code == 200, url
        assert shows_payload(assert_inert(page.text, url)), url
