"""The organization's template: service owners and section instructions, validated, versioned, per organization."""

from blametrail import db
from blametrail.orgs import templates

API = "/api/v1/org/template"


def test_an_empty_template_reads_as_empty_parts(client, factory):
    viewer = factory.team()["viewer"]
    assert client.get(API, headers=viewer.headers).json() == {
        "service_owners": {}, "section_instructions": {}, "version": 0, "updated_at": None, "updated_by": None}


def test_admins_set_owners_and_instructions_and_the_drafting_side_reads_them(client, factory, rt):
    team = factory.team()
    r = client.put(API, headers=team["admin"].headers, json={
        "service_owners": {"checkout": " Payments team ", "search": ""},
        "section_instructions": {"summary": "Three sentences for executives."}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["service_owners"] == {"checkout": "Payments team"}  # trimmed; an emptied entry is dropped
    assert body["version"] == 1 and body["updated_by"]
    org_id = team["admin"].actor.org_id
    with db.transaction(rt.factory) as s:
        assert templates.service_owners(s, org_id) == {"checkout": "Payments team"}
        assert templates.section_instructions(s, org_id) == {"summary": "Three sentences for executives."}


def test_members_cannot_change_it(client, factory):
    team = factory.team()
    for role in ("member", "viewer"):
        r = client.put(API, headers=team[role].headers, json={"service_owners": {"a": "b"}})
        assert r.status_code == 403, (role, r.text)


def test_bad_templates_are_422_and_nothing_stored(client, factory):
    owner = factory.team()["owner"]
    client.put(API, headers=owner.headers, json={"service_owners": {"checkout": "Payments"}}).raise_for_status()
    for bad in ({"section_instructions": {"not_a_section": "x"}}, {"service_owners": {"a": "x" * 201}},
                {"service_owners": {"": "team"}}, {"service_owners": {"a": "b\x00"}}, {"owners": {}}):
        r = client.put(API, headers=owner.headers, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["type"] == "/problems/validation"
    assert client.get(API, headers=owner.headers).json()["service_owners"] == {"checkout": "Payments"}


def test_a_stale_version_is_a_conflict(client, factory):
    owner = factory.team()["owner"]
    client.put(API, headers=owner.headers, json={"service_owners": {"a": "A"}, "version": 0}).raise_for_status()
    r = client.put(API, headers=owner.headers, json={"service_owners": {"a": "B"}, "version": 0})
    assert r.status_code == 409 and r.json()["type"] == "/problems/version-conflict"
    assert client.get(API, headers=owner.headers).json()["service_owners"] == {"a": "A"}


def test_each_organization_has_its_own(client, factory):
    a, b = factory.team()["owner"], factory.team()["owner"]
    client.put(API, headers=a.headers, json={"service_owners": {"checkout": "A team"}}).raise_for_status()
    assert client.get(API, headers=b.headers).json()["service_owners"] == {}
