"""Test factories: organizations, members with tokens, incidents — through the real services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from blametrail import db
from blametrail.orgs import service as orgs
from blametrail.orgs.service import Actor

_seq = itertools.count(1)


@dataclass
class Member:
    actor: Actor
    token: str
    email: str
    org_slug: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    def __init__(self, rt) -> None:
        self.rt = rt

    def org(self, plan: str = "pro", slug: str | None = None, ai_enabled: bool = True) -> str:
        """Create an organization; return its slug."""
        slug = slug or f"org{next(_seq)}"
        with db.transaction(self.rt.factory) as s:
            org = orgs.create_org(session=s, slug=slug, name=slug.title(), plan=plan, now=self.rt.clock.now())
            org.ai_enabled = ai_enabled
        return slug

    def member(self, org_slug: str, role: str = "owner", password: str | None = None) -> Member:
        """Create a member with an API token."""
        email = f"{role}{next(_seq)}@{org_slug}.test"
        with db.transaction(self.rt.factory) as s:
            org = orgs.get_org_by_slug(session=s, slug=org_slug)
            m = orgs.create_user(session=s, email=email, org=org, role=role, password=password, now=self.rt.clock.now())
            _, raw = orgs.create_token(session=s, membership=m, name="test", now=self.rt.clock.now())
            actor = orgs.actor_for(m)
        return Member(actor=actor, token=raw, email=email, org_slug=org_slug)

    def team(self, plan: str = "pro") -> dict[str, Member]:
        """Create an organization with one member per role."""
        slug = self.org(plan=plan)
        return {role: self.member(slug, role) for role in ("owner", "admin", "member", "viewer")}


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
