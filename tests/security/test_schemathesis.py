"""Schemathesis against the app's own OpenAPI, in-process: every operation, valid and invalid input, never a 5xx.

Each group of operations (incidents, deploys, org, monitors, webhooks, alerts, connections, the inbound receivers)
gets its own organization seeded through the API: open and resolved incidents (with a postmortem and a revision),
a deploy, a monitor, a connection, a webhook of every kind, a spare token and member. Half the generated cases
address those rows; the rest use whatever ids and values schemathesis invents (negative ids, 2**63, NUL bytes,
long strings, impossible dates), which must answer 4xx. Destructive operations run last in their group.
Every answer must also match the document: its status (any 4xx is documented as problem+json), its media type and
its body's schema. Generation is derandomized: the same code runs the same cases; the total is printed and asserted.

A second, hand-made pass sends a valid body for every JSON operation and receiver with one leaf at a time
replaced by what PostgreSQL refuses (NUL characters, huge integers, out-of-range dates, very long text):
the answer is never a 5xx, and no text with a NUL character is ever stored.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import String, Text, func, select

from blametrail import db
from blametrail.models import Base
from tests.alerts.test_parsers import ALERTMANAGER_FIRING, GENERIC_FIRING, GRAFANA_FIRING
from tests.deploys.test_parsers import DEPLOYMENT_STATUS_SUCCESS, PUSH_MAIN
from tests.deploys.test_receivers import GENERIC
from tests.security.conftest import API, Seeded, seed

MIN_CASES = 1000
# every answer is documented: its status (4xx as problem+json), its media type and its body's schema
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PER_OPERATION = 12  # hypothesis examples per operation (22 until the API passed 100 operations, 16 until CI crossed 20 minutes again); operations with few possible inputs run fewer
RECEIVER_KIND = {"alertmanager": "alertmanager", "grafana": "grafana", "alerts": "generic_alert",
                 "github": "github", "deploys": "generic_deploy"}


def _group(op) -> str:
    parts = op.path.strip("/").split("/")
    return "receivers" if parts[0] == "webhooks" else parts[2] if parts[0] == "api" else parts[0]


def _order(op) -> tuple:
    """Reads and writes first, then what takes rows (or the caller's own token) away."""
    destructive = op.method.upper() == "DELETE" or op.path.endswith("rotate-secret")
    return (_group(op), destructive, "tokens" in op.path, op.path, op.method)


def _seeded_path(op, s: Seeded) -> dict:
    """Path parameters pointing at rows the seeded organization owns."""
    values = {"incident_id": s.resolved_incident, "deploy_id": s.deploy, "monitor_id": s.monitor,
              "connection_id": s.connection, "token_id": s.spare_token, "user_id": s.spare_member,
              "number": s.revision, "webhook_id": s.webhooks["generic_alert"]["id"],
              "invitation_id": s.invitation}
    if op.path.endswith(("/resolve", "/updates")):
        values["incident_id"] = s.open_incident
    if op.path.startswith("/webhooks/"):
        values["uid"] = s.webhooks[RECEIVER_KIND[op.path.split("/")[2]]]["uid"]
    return {k: v for k, v in values.items() if "{" + k + "}" in op.path}


def _strategies(op, s: Seeded):
    """Valid and invalid cases, each both for the seeded rows and for invented ids."""
    fixed = _seeded_path(op, s)
    out = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for kw in ([{"path_parameters": fixed}, {}] if fixed else [{}]):
            try:
                out.append(op.as_strategy(generation_mode=mode, **kw))
            except Exception:  # noqa: BLE001 — e.g. nothing to negate in an operation without inputs
                continue
    return st.one_of(out)


def _receiver_headers(path: str, body: bytes, s: Seeded) -> dict:
    """The seeded webhook's secret; for GitHub the body's signature instead."""
    kind = RECEIVER_KIND[path.split("/")[2]]
    secret = s.webhooks[kind]["secret"]
    if kind != "github":
        return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": "push", "Content-Type": "application/json"}


def _headers(case, s: Seeded) -> dict:
    if not case.operation.path.startswith("/webhooks/"):
        return dict(s.headers)
    body = case.body
    body = b"" if body is None or body is NOT_SET else body if isinstance(body, bytes | str) else json.dumps(body)
    return _receiver_headers(case.operation.path, body.encode() if isinstance(body, str) else body, s)


def test_fuzz_every_operation_never_answers_5xx(app, client, factory):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    total, failures, per_op = 0, [], {}
    seeds: dict[str, Seeded] = {}

    for op in operations:
        s = seeds.get(_group(op)) or seeds.setdefault(_group(op), seed(client, factory))
        count = 0

        @settings(max_examples=PER_OPERATION, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=_strategies(op, s))
        def run(case):
            nonlocal count
            count += 1
            where = f"{op.method.upper()} {op.path} {case.path_parameters} {case.query} {str(case.body)[:300]!r}"
            try:  # why: the in-process client re-raises what the app did not handle (the client saw a 500)
                response = case.call(headers=_headers(case, s))
            except Exception as exc:  # noqa: BLE001 — collect every failure, report them together
                failures.append(_raised(exc, where))
                return
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{response.status_code} {str(exc)[:600]}\n  {where}")

        run()
        per_op[f"{op.method.upper()} {op.path}"] = count
        total += count

    print(f"\nschemathesis: {total} cases over {len(operations)} operations")
    for label, n in per_op.items():
        print(f"  {n:4d}  {label}")
    _assert_no_failures(failures)
    assert len(operations) >= 58 and total >= MIN_CASES, f"only {total} cases over {len(operations)} operations"


def _raised(exc: Exception, where: str) -> str:
    """Describe an exception the app did not handle (the in-process client re-raises it: the caller saw a 500)."""
    return f"500 raised {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}\n  {where}"


def _assert_no_failures(failures: list[str]) -> None:
    distinct: dict[str, str] = {}
    for f in failures:
        head, _, where = f.partition("\n")
        distinct.setdefault(" ".join(where.split()[:2]) + " -> " + head[:200], f)
    assert not failures, f"{len(failures)} failing cases, {len(distinct)} distinct:\n" + "\n".join(distinct.values())


# --- boundary values in every leaf of a valid body ------------------------------------------------------------------

NUL = "a\x00b"
BIG = 2**63
DATES = ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30T10:00:00Z",
         "2026-11-26T10:00:00+25:00")
LONG = "x" * 20_001  # past every max_length (20,000 is the largest)


def _api_bodies(s: Seeded) -> list[tuple[str, str, dict]]:
    """A valid body for every JSON operation of the API (method, path, body)."""
    inc, pm = f"{API}/incidents/{s.open_incident}", f"{API}/incidents/{s.resolved_incident}/postmortem"
    return [
        ("POST", f"{API}/incidents", {"title": "Checkout errors", "description": "500s", "severity": "SEV-2",
                                      "services": ["checkout"], "started_at": "2026-11-26T09:30:00Z"}),
        ("POST", f"{inc}/updates", {"body": "Rolling back", "at": "2026-11-26T09:40:00Z"}),
        ("POST", f"{API}/deploys", {**GENERIC, "source": "api"}),
        ("PATCH", pm, {"version": 1, "sections": {
            "summary": "s", "customer_impact": {"description": "d", "duration_minutes": 5, "affected_services": ["c"]},
            "timeline": [{"at": "2026-11-26T09:30:00Z", "source": "update", "description": "d", "evidence": ["upd_1"]}],
            "root_cause": "r", "contributing_factors": ["c"], "what_went_well": ["w"], "what_went_poorly": ["p"],
            "action_items": [{"title": "t", "priority": "high", "suggested_owner": "o"}],
            "confidence": {"level": "low", "reason": "r"}}}),
        ("POST", f"{pm}/regenerate", {"overwrite_edited": False}),
        ("POST", f"{API}/org/tokens", {"name": "ci"}),
        ("POST", f"{API}/org/members", {"email": "new@example.test", "role": "member", "name": "New",
                                        "password": "correct-horse-battery"}),
        ("PATCH", f"{API}/org/members/{s.spare_member}", {"role": "viewer"}),
        ("PUT", f"{API}/org/ai", {"engine": "openai", "model": "gpt", "base_url": "http://127.0.0.1:9/v1",
                                  "api_key": "sk-x", "output_mode": "tool", "options": {"timeout_seconds": 5}}),
        ("POST", f"{API}/monitors", {"name": "n", "url": "https://checkout.example/healthz", "method": "GET",
                                     "expected_statuses": [200], "keyword": "ok", "timeout_seconds": 5,
                                     "interval_seconds": 60, "failure_threshold": 2, "recovery_threshold": 2,
                                     "service": "checkout", "severity": "SEV-2", "enabled": True}),
        ("PATCH", f"{API}/monitors/{s.monitor}", {"name": "n", "keyword": "ok", "service": "checkout",
                                                  "interval_seconds": 120}),
        ("POST", f"{API}/webhooks", {"kind": "alertmanager", "name": "n", "default_service": "checkout",
                                     "default_severity": "SEV-2", "environment": "production"}),
        ("POST", f"{API}/connections", {"name": "n", "provider": "prometheus", "endpoint": "http://127.0.0.1:9",
                                        "credentials": {"token": "t"}, "options": {"timeout_seconds": 5},
                                        "signals": [{"name": "error_rate", "kind": "metric", "query": "up",
                                                     "services": ["checkout"], "unit": "ratio"}]}),
        ("PATCH", f"{API}/connections/{s.connection}", {"name": "n", "credentials": {"token": "t"},
                                                        "signals": [{"name": "e", "query": "up"}]}),
    ]


def _receiver_bodies(s: Seeded) -> list[tuple[str, str, dict]]:
    uid = {kind: h["uid"] for kind, h in s.webhooks.items()}
    return [("POST", f"/webhooks/alertmanager/{uid['alertmanager']}", ALERTMANAGER_FIRING),
            ("POST", f"/webhooks/grafana/{uid['grafana']}", GRAFANA_FIRING),
            ("POST", f"/webhooks/alerts/{uid['generic_alert']}", GENERIC_FIRING),
            ("POST", f"/webhooks/deploys/{uid['generic_deploy']}", GENERIC),
            ("POST", f"/webhooks/github/{uid['github']}", PUSH_MAIN),
            ("POST", f"/webhooks/github/{uid['github']}", DEPLOYMENT_STATUS_SUCCESS)]


def _leaves(value, path=()) -> Iterator[tuple[tuple, object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _replace(body, path, new):
    out = copy.deepcopy(body)
    target = out
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = new
    return out


def _variants(body) -> Iterator[tuple[str, object]]:
    """The body with one leaf at a time made hostile; a NUL in the first key too."""
    yield "nul-key", {**body, "k\x00": "v"}
    for path, value in _leaves(body):
        where = ".".join(map(str, path))
        if isinstance(value, bool) or value is None:
            yield f"{where}=nul", _replace(body, path, NUL)
        elif isinstance(value, int | float):
            yield f"{where}=2**63", _replace(body, path, BIG)
            yield f"{where}=-2**63", _replace(body, path, -BIG)
            yield f"{where}=1e308", _replace(body, path, 1e308)
        elif isinstance(value, str) and value[:4].isdigit() and "T" in value:
            for d in DATES:
                yield f"{where}={d}", _replace(body, path, d)
        elif isinstance(value, str):
            yield f"{where}=nul", _replace(body, path, value + NUL)
            yield f"{where}=long", _replace(body, path, LONG)


def test_boundary_values_in_every_field_answer_4xx_and_store_no_nul(client, factory, rt, caplog):
    caplog.set_level(logging.ERROR)
    failures, count = [], 0
    s = seed(client, factory)
    for method, path, base in _api_bodies(s) + _receiver_bodies(s):
        for label, body in _variants(base):
            data = json.dumps(body).encode()
            headers = _receiver_headers(path, data, s) if path.startswith("/webhooks/") else s.headers
            if "/github/" in path:
                headers["X-GitHub-Event"] = "push" if "commits" in base else "deployment_status"
            count += 1
            try:
                r = client.request(method, path, content=data, headers={"Content-Type": "application/json", **headers})
            except Exception as exc:  # noqa: BLE001
                failures.append(_raised(exc, f"{method} {path} {label}"))
                continue
            if r.status_code >= 500:
                failures.append(f"{r.status_code} {r.text[:300]}\n  {method} {path} {label}")
    queries = [f"{API}/incidents?q=a%00b", f"{API}/incidents?service=a%00", f"{API}/incidents?cursor=99999999999",
               f"{API}/incidents?cursor=-1", f"{API}/deploys?service=%00", f"{API}/alerts?incident_id=99999999999",
               f"{API}/incidents/99999999999", f"{API}/incidents/-1/timeline", "/webhooks/alertmanager/a%00b",
               f"{API}/incidents/{s.resolved_incident}/postmortem/revisions/99999999999"]
    for url in queries:
        count += 1
        try:
            r = client.request("POST" if url.startswith("/webhooks/") else "GET", url, headers=s.headers)
        except Exception as exc:  # noqa: BLE001
            failures.append(_raised(exc, f"GET {url}"))
            continue
        if r.status_code >= 500:
            failures.append(f"{r.status_code} {r.text[:300]}\n  GET {url}")
    # what was accepted must read back: every incident's timeline, summary and postmortem, every deploy
    incidents = client.get(f"{API}/incidents?limit=200", headers=s.headers).json()["items"]
    reads = [f"{API}/deploys?limit=200", f"{API}/alerts?limit=200"] + [
        f"{API}/incidents/{i['id']}/{what}" for i in incidents for what in ("timeline", "summary", "postmortem")]
    for url in reads:
        count += 1
        try:
            r = client.get(url, headers=s.headers)
        except Exception as exc:  # noqa: BLE001
            failures.append(_raised(exc, f"GET {url}"))
            continue
        if r.status_code >= 500:
            failures.append(f"{r.status_code} {r.text[:300]}\n  GET {url}")
    failures += [f"logged {r.levelname} {r.getMessage()[:200]} {r.exc_info[1]!r}\n  {r.name}"
                 for r in caplog.records if r.levelno >= logging.ERROR]
    print(f"\nboundary values: {count} requests")
    _assert_no_failures(failures)
    assert count >= 300
    with db.transaction(rt.factory) as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, String | Text):
                    bad = session.scalar(select(column).where(func.instr(column, func.char(0)) > 0).limit(1)) \
                        if rt.engine.dialect.name == "sqlite" else None  # PostgreSQL cannot hold one at all
                    assert bad is None, f"{table.name}.{column.name} stored a NUL character"
