"""Tenant isolation over every route, generated from the app's route list: org B never reaches org A's records.

Every route with a record id in its path is called (with its own method) by org B's owner on a record of org A:
the answer is 404 exactly like for an id that never existed, shows nothing of A, and changes no row. Every list
route shows each organization its own records only. Receivers: the secret of A's webhook never posts into B's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from sqlalchemy import select

from blametrail.alerts.models import Alert
from blametrail.deploys.models import Deploy
from blametrail.incidents.models import Incident
from blametrail.integrations.models import Connection
from blametrail.monitors.models import Monitor
from blametrail.orgs.models import ApiToken, Membership, User
from blametrail.webhooks.models import Webhook
from tests.alerts.test_parsers import ALERTMANAGER_FIRING, GENERIC_FIRING, GRAFANA_FIRING
from tests.deploys.test_parsers import PING
from tests.security.routes_support import (
    PARAMS,
    PUBLIC,
    RECEIVER,
    VENDOR,
    VENDOR_CALLS,
    check_table_covers,
    query_id_params,
    receiver_kind,
    spec_of,
    table_routes,
    world,  # noqa: F401 — the module-scoped fixture
)

MISSING = "987654321"
# routes naming a record of an organization ({kind} of /api/v1/integrations names a vendor: nothing foreign to point at)
ID_ROUTES = [r for r in table_routes() if any(PARAMS[p].owned for p in r.params)
             and spec_of(r).action not in (PUBLIC, RECEIVER, VENDOR)]
LIST_ROUTES = [r for r in table_routes() if r.method == "GET" and not r.params
               and spec_of(r).action not in (PUBLIC, RECEIVER, VENDOR)]
RECEIVERS = [r for r in table_routes() if spec_of(r).action == RECEIVER]
VENDOR_ROUTES = [r for r in table_routes() if spec_of(r).action == VENDOR]


def test_the_route_table_covers_exactly_the_routes_the_app_serves(world):
    check_table_covers(world.app)


def missing(ids: dict) -> dict:
    """The same path with every record id replaced by one that never existed."""
    return {k: re.sub(r"\d+", MISSING, str(v)) if PARAMS[k].owned else v for k, v in ids.items()}


def refused_like_missing(world, route, ids: dict, who: str = "owner") -> list[str]:
    """Call the route as B's `who` on `ids`; return what is wrong with the answer (empty when it is a clean 404)."""
    problems = []
    body = world.body(route, world.b, ids)
    r = world.call(route, who, world.b, ids, body)
    if world.a.marker in r.text:
        problems.append("its answer shows org A's data")
    gone = world.call(route, who, world.b, missing(ids), body)
    if who == "owner" and r.status_code != 404:
        problems.append(f"status {r.status_code}, not 404: {r.text[:200]}")
    if r.status_code != gone.status_code:
        problems.append(f"status {r.status_code} for A's record but {gone.status_code} for a missing one")
    if route.kind == "api" and r.status_code == 404 and r.json().get("type") != "/problems/not-found":
        problems.append(f"not a not-found problem: {r.text[:200]}")
    return problems


@pytest.mark.parametrize("route", ID_ROUTES, ids=str)
def test_another_organizations_ids_answer_404_like_missing_ones(world, route):
    ids = world.fill(route, world.a)
    owned = [p for p in route.params if PARAMS[p].owned]
    own = world.fill(route, world.b) if len(owned) > 1 else {}
    world.body(route, world.b, ids)  # why: B's own setup (an integration…) is made before the snapshot, not counted
    before = world.snapshot()
    problems = [f"B's owner: {p}" for p in refused_like_missing(world, route, ids)]
    problems += [f"B's viewer: {p}" for p in refused_like_missing(world, route, ids, who="viewer")]
    for name in owned[1:]:  # a path mixing B's own parent record with A's child record is just as foreign
        problems += [f"B's {owned[0]} with A's {name}: {p}"
                     for p in refused_like_missing(world, route, {**own, name: ids[name]})]
    if world.snapshot() != before:
        problems.append("rows changed")
        world.forget()  # why: the shared records may be gone or altered; later tests must not inherit that
    assert not problems, f"{route} called by org B on org A's records ({ids}):\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def populated(world):
    """Both organizations hold one record of every kind; return org A's record ids."""
    made = {}
    for side in (world.a, world.b):
        made[side.slug] = {
            "incident_id": world.incident(side), "open": world.incident(side, "open"), "deploy_id": world.deploy(side),
            "monitor_id": world.monitor(side), "connection_id": world.connection(side), "token_id": world.token(side),
            "user_id": world.member(side),
        }
        hook = world.webhook(side, "generic_alert")
        made[side.slug]["webhook_id"] = hook["id"]
        alert = json.loads(json.dumps(GENERIC_FIRING))
        alert["alerts"][0].update(name=f"{side.marker} backlog alert", fingerprint=f"{side.marker}-fp")
        r = world.api.post(f"/webhooks/alerts/{hook['uid']}", json=alert,
                           headers={"Authorization": f"Bearer {hook['secret']}"})
        assert r.status_code == 200, r.text
    return made[world.a.slug]


@pytest.mark.parametrize("route", LIST_ROUTES, ids=str)
def test_lists_show_each_organization_only_its_own_records(world, populated, route):
    for me, other in ((world.a, world.b), (world.b, world.a)):
        r = world.call(route, "owner", me, {})
        assert r.status_code == 200, f"{route} as {me.slug}'s owner: {r.status_code} {r.text[:300]}"
        assert other.marker not in r.text, f"{route} shows {me.slug} a record of {other.slug}"
    # filters naming a record (e.g. ?incident_id=) of the other organization find nothing of it
    names = query_id_params(world.app, route)
    if names:
        query = {n: populated[n] for n in names if n in populated}
        assert set(query) == set(names), f"{route}: no record to put in the query parameters {names}"
        if route.kind == "api":
            r = world.api.get(route.path, params=query, headers=world.b.headers("owner"))
        else:
            r = world.b.browsers["owner"].get(route.path, params=query)
        assert r.status_code in (200, 404), r.text
        assert world.a.marker not in r.text, f"{route}?{query} shows org B a record of org A"


def test_every_record_of_an_organization_is_visible_in_some_list(world, populated):
    """The list checks mean something: each kind of record of A does appear in one of A's lists."""
    shown = " ".join(world.call(route, "owner", world.a, {}).text for route in LIST_ROUTES)
    with world.rt.factory() as s:
        org = world.a.org_id
        expected = {
            "incident": s.scalar(select(Incident.title).where(Incident.id == populated["incident_id"])),
            "deploy": s.scalar(select(Deploy.version).where(Deploy.id == populated["deploy_id"])),
            "monitor": s.scalar(select(Monitor.name).where(Monitor.id == populated["monitor_id"])),
            "connection": s.scalar(select(Connection.name).where(Connection.id == populated["connection_id"])),
            "token": s.scalar(select(ApiToken.name).where(ApiToken.id == populated["token_id"])),
            "member": s.scalar(select(User.email).join(Membership).where(Membership.org_id == org,
                                                                          User.id == populated["user_id"])),
            "webhook": s.scalar(select(Webhook.name).where(Webhook.id == populated["webhook_id"])),
            "alert": s.scalar(select(Alert.name).where(Alert.org_id == org)),
        }
    assert all(expected.values()), expected
    assert [k for k, v in expected.items() if v not in shown] == []


# --- receivers ----------------------------------------------------------------------------------------------------

PAYLOADS = {"alertmanager": ALERTMANAGER_FIRING, "grafana": GRAFANA_FIRING, "generic_alert": GENERIC_FIRING,
            "github": PING, "generic_deploy": {"service": "checkout", "version": "v-receiver", "external_id": "x1"}}


def deliver(world, route, uid: str, secret: str, how: str = "bearer"):
    kind = receiver_kind(route)
    body = json.dumps(PAYLOADS[kind]).encode()
    headers = {"Content-Type": "application/json"}
    if kind == "github":
        headers |= {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1",
                    "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    elif how == "bearer":
        headers["Authorization"] = f"Bearer {secret}"
    elif how == "header":
        headers["X-BlameTrail-Secret"] = secret
    else:
        headers["Authorization"] = "Basic " + base64.b64encode(f"sender:{secret}".encode()).decode()
    return world.api.post(route.url({"uid": uid}), content=body, headers=headers)


@pytest.mark.parametrize("route", RECEIVERS, ids=str)
def test_a_webhook_secret_of_one_organization_never_posts_into_another(world, route):
    kind = receiver_kind(route)
    mine, theirs = world.webhook(world.a, kind), world.webhook(world.b, kind)
    before = world.snapshot()
    for how in ("bearer", "header", "basic"):
        r = deliver(world, route, theirs["uid"], mine["secret"], how)
        assert r.status_code == 401, f"{route} accepted org A's secret on org B's webhook ({how}): {r.text}"
        assert world.a.marker not in r.text and world.b.marker not in r.text
    assert world.snapshot() == before, "a refused delivery stored something"
    # the same delivery with B's own secret is accepted: the refusal above was the secret's doing
    ok = deliver(world, route, theirs["uid"], theirs["secret"])
    assert 200 <= ok.status_code < 300, ok.text


@pytest.mark.parametrize("route", VENDOR_ROUTES, ids=str)
def test_a_vendor_call_signed_for_one_organization_never_lands_in_another(world, route):
    kind = route.path.split("/")[2]
    mine, theirs = world.vendor(world.a, kind), world.vendor(world.b, kind)
    make = VENDOR_CALLS[route.path]
    before = world.snapshot()
    content, headers = make(mine["settings"], world)  # signed with org A's secret, sent to org B's URL
    r = world.api.post(route.url({"inbound_uid": theirs["uid"]}), content=content, headers=headers)
    assert r.status_code == 401, f"{route} accepted org A's signature on org B's URL: {r.status_code} {r.text[:200]}"
    assert world.snapshot() == before, "a refused vendor call stored something"
    content, headers = make(theirs["settings"], world)  # the same call signed with B's own secret is accepted
    ok = world.api.post(route.url({"inbound_uid": theirs["uid"]}), content=content, headers=headers)
    assert 200 <= ok.status_code < 300, ok.text
    world.forget()
