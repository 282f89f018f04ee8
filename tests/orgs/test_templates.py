"""The organization's template: service owners and section instructions, validated, versioned, per organization."""

import pytest

from blametrail import db
from blametrail.analysis.severity import definitions_to_data
from blametrail.engines.sections import SECTION_KEYS
from blametrail.errors import ValidationFailed
from blametrail.orgs import templates

API = "/api/v1/org/template"


def test_an_empty_template_reads_as_empty_parts(client, factory):
    viewer = factory.team()["viewer"]
    assert client.get(API, headers=viewer.headers).json() == {
        "service_owners": {}, "section_instructions": {}, "section_order": list(SECTION_KEYS), "extra_sections": [],
        "severity_definitions": [], "version": 0, "updated_at": None, "updated_by": None}


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


def test_order_extra_sections_and_severity_definitions_round_trip_and_shape_the_layout(client, factory, rt):
    team = factory.team()
    custom = definitions_to_data()
    custom[0]["meaning"] = "Our own SEV-1 wording."
    r = client.put(API, headers=team["owner"].headers, json={
        "section_order": ["timeline", "customer_comms", "summary"],
        "extra_sections": [{"key": "customer_comms", "title": " Customer communication ",
                            "instruction": "List every status page update."}],
        "section_instructions": {"customer_comms": "ignored when the section has its own", "summary": "Short."},
        "severity_definitions": custom})
    assert r.status_code == 200, r.text
    body = client.get(API, headers=team["viewer"].headers).json()
    assert body["section_order"][:3] == ["timeline", "customer_comms", "summary"]
    assert sorted(body["section_order"]) == sorted([*SECTION_KEYS, "customer_comms"])  # missing keys appended
    assert body["extra_sections"] == [{"key": "customer_comms", "title": "Customer communication",
                                       "instruction": "List every status page update."}]
    assert body["severity_definitions"][0]["meaning"] == "Our own SEV-1 wording."
    org_id = team["owner"].actor.org_id
    with db.transaction(rt.factory) as s:
        layout = templates.section_layout(s, org_id)
        assert [x["key"] for x in layout[:3]] == ["timeline", "customer_comms", "summary"]
        assert layout[1] == {"key": "customer_comms", "title": "Customer communication", "extra": True,
                             "instruction": "List every status page update."}
        assert layout[2]["instruction"] == "Short." and layout[2]["extra"] is False
        assert set(layout[0]) == {"key", "title", "extra", "instruction"}
        assert templates.extra_keys(s, org_id) == ["customer_comms"]
        assert templates.validate_extra(s, org_id, {"customer_comms": "We posted twice."}) == {
            "customer_comms": "We posted twice."}
        with pytest.raises(ValidationFailed):
            templates.validate_extra(s, org_id, {"nope": "x"})
        with pytest.raises(ValidationFailed):
            templates.validate_extra(s, org_id, {"customer_comms": "x" * 20_001})
        assert templates.severity_definitions(s, org_id)[0].meaning == "Our own SEV-1 wording."
    # PUT replaces the whole template: leaving the fields out restores their defaults
    client.put(API, headers=team["owner"].headers, json={}).raise_for_status()
    body = client.get(API, headers=team["owner"].headers).json()
    assert body["section_order"] == list(SECTION_KEYS) and body["extra_sections"] == []
    assert body["severity_definitions"] == []


@pytest.mark.parametrize(("bad", "loc"), [
    ({"extra_sections": [{"key": "summary", "title": "X"}]}, ["extra_sections", 0, "key"]),
    ({"extra_sections": [{"key": "Bad-Key", "title": "X"}]}, ["extra_sections", 0, "key"]),
    ({"extra_sections": [{"key": "ab", "title": "X"}, {"key": "ab", "title": "Y"}]}, ["extra_sections", 1, "key"]),
    ({"extra_sections": [{"key": "ab", "title": ""}]}, ["extra_sections", 0, "title"]),
    ({"extra_sections": [{"key": "ab", "title": "x" * 201}]}, ["extra_sections", 0, "title"]),
    ({"extra_sections": [{"key": f"k{i}", "title": "t"} for i in range(10, 31)]}, ["extra_sections"]),
    ({"extra_sections": "nope"}, ["extra_sections"]),
    ({"section_order": ["summary", "nope"]}, ["section_order", "nope"]),
    ({"section_order": ["summary", "summary"]}, ["section_order"]),
    ({"section_order": "summary"}, ["section_order"]),
    ({"severity_definitions": [{"severity": "SEV-9", "rules": [{}]}]}, ["severity_definitions"]),
    ({"severity_definitions": {"a": 1}}, ["severity_definitions"]),
])
def test_bad_new_fields_are_422_with_the_field_named(client, factory, bad, loc):
    owner = factory.team()["owner"]
    r = client.put(API, headers=owner.headers, json=bad)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()
    assert client.get(API, headers=owner.headers).json()["version"] == 0
