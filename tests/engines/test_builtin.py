"""The built-in engine: the template's service owners reach the action items; the sections stay the contract."""

from __future__ import annotations

from blametrail.engines.base import DraftContext
from blametrail.engines.builtin import BuiltinEngine
from blametrail.engines.sections import ActionItem, Sections, dump
from tests.analysis.factories import bad_deploy_pack


def test_draft_uses_the_service_owners_from_the_context_and_validates():
    draft = BuiltinEngine().draft(bad_deploy_pack(), DraftContext(service_owners={"checkout": "team-checkout"}))
    sections = dump(Sections.model_validate(draft.sections))
    assert sections["action_items"] and {i["suggested_owner"] for i in sections["action_items"]} == {"team-checkout"}
    assert all(i["kind"] in ("detect", "mitigate", "prevent") and i["evidence"] for i in sections["action_items"])
    plain = BuiltinEngine().draft(bad_deploy_pack())
    assert {i["suggested_owner"] for i in plain.sections["action_items"]} == {None}
    authors = {c.author for d in bad_deploy_pack().deploys for c in d.commits}
    assert not authors & {i["suggested_owner"] for i in plain.sections["action_items"]}


def test_optional_fields_are_left_out_at_their_defaults():
    data = {"title": "Add a canary", "priority": "high", "suggested_owner": None}
    assert dump(Sections.model_validate({"action_items": [data]}))["action_items"] == [data]
    full = {**data, "kind": "prevent", "evidence": ["deploy_1"]}
    assert dump(Sections.model_validate({"action_items": [full]}))["action_items"] == [full]


def test_the_schema_the_prompt_is_built_from_describes_the_new_fields():
    schema = Sections.model_json_schema()
    item = schema["$defs"]["ActionItem"]["properties"]
    assert item["kind"]["anyOf"][0]["enum"] == ["detect", "mitigate", "prevent"]
    assert "never a person" in item["suggested_owner"]["description"]
    assert "After resolution" in schema["$defs"]["TimelineItem"]["properties"]["after_resolution"]["description"]
    assert ActionItem(title="x").kind is None
