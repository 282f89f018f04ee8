"""The demo incidents, drafted by the built-in engine from their packs: cited what-went-poorly and factors."""

from __future__ import annotations

import re

from sqlalchemy import select

from blametrail import db
from blametrail.demo import seed_demo
from blametrail.incidents.models import Incident
from blametrail.orgs.models import Organization
from blametrail.postmortems.models import GenerationRun, Postmortem

_CITED = re.compile(r"\(evidence: ([^)]+)\)")


def _cited(texts: list[str]) -> set[str]:
    return {i.strip() for t in texts for group in _CITED.findall(t) for i in group.split(",")}


def test_demo_drafts_say_what_went_poorly_and_why_with_citations(rt):
    seed_demo(rt)
    with db.transaction(rt.factory) as s:
        org_id = s.scalar(select(Organization.id).where(Organization.slug == "demo"))
        drafts = []
        for incident in s.scalars(select(Incident).where(Incident.org_id == org_id).order_by(Incident.id)):
            pm = s.scalar(select(Postmortem).where(Postmortem.incident_id == incident.id))
            run = s.scalar(select(GenerationRun).where(GenerationRun.postmortem_id == pm.id)
                           .order_by(GenerationRun.id.desc()).limit(1))
            drafts.append((pm.sections, run.evidence))
    hand, bad_deploy, expired, quiet = (sections for sections, _ in drafts)
    for sections, evidence in drafts:
        assert sections["what_went_poorly"], sections["summary"]  # every demo incident had something to learn
        valid = {item["id"] for key in ("updates", "status_changes", "deploys", "metrics", "logs")
                 for item in evidence.get(key, [])}
        valid |= {c["id"] for d in evidence.get("deploys", []) for c in d["commits"]}
        texts = sections["what_went_poorly"] + sections["contributing_factors"]
        assert all(_CITED.search(t) for t in texts)
        assert _cited(texts) <= valid
        assert all(item["kind"] in ("detect", "mitigate", "prevent") and item["evidence"]
                   for item in sections["action_items"])
        assert not {item["suggested_owner"] for item in sections["action_items"]} - {None}  # no template: no owner
        assert len(re.split(r"(?<=[.!?])\s+(?=[A-Za-z“])", sections["summary"])) <= 5
    # where the evidence supports a contributing factor, there is one
    assert any("without any test change" in f for f in hand["contributing_factors"])
    assert any("went unnoticed" in f for f in bad_deploy["contributing_factors"])
    assert any("certificate expired" in f for f in expired["contributing_factors"])
    assert quiet["contributing_factors"] == []  # an alert that cleared on its own: nothing to explain
