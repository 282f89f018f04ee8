"""Accounts and invitations through the real HTTP surface: no admin ever sets or overwrites someone's password
(issue 11, F1), invitations are accepted only by the invitee, accounts belong to several organizations."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blametrail import db
from blametrail.cli import main as cli_main
from blametrail.orgs import service as orgs
from blametrail.orgs.models import Invitation, Membership, Organization, User
from tests.web.test_pages import PASSWORD, browser, login, post, soup, team, text  # noqa: F401 (fixtures)


def _victim_and_attacker(factory):
    victim_slug = factory.org(slug="victim")
    boss = factory.member(victim_slug, "owner", password=PASSWORD)
    evil = factory.member(factory.org(slug="evil", plan="free"), "admin", password=PASSWORD)
    return boss, evil


def _memberships(rt, email: str) -> set[str]:
    with db.transaction(rt.factory) as s:
        rows = s.execute(select(Membership.role, Organization.slug).join(Organization, Organization.id == Membership.org_id)
                         .join(User, User.id == Membership.user_id).where(User.email == email))
        return {f"{role}@{slug}" for role, slug in rows}


def test_an_admin_cannot_take_over_an_account_of_another_organization(client, factory, rt, browser):
    """F1: the probe's exact steps. Today's code answers 201 and P2 signs in as the victim's owner."""
    boss, evil = _victim_and_attacker(factory)
    for email in (boss.email, boss.email.upper()):
        r = client.post("/api/v1/org/members", json={"email": email, "role": "viewer", "password": "P2-attacker-pw"},
                        headers=evil.headers)
        assert r.status_code == 422 and "password" in r.json()["detail"], r.text
        r = client.post("/api/v1/org/members", json={"email": email, "role": "viewer"}, headers=evil.headers)
        assert r.status_code == 201, r.text
        assert r.json()["existing_account"] is True and r.json()["status"] == "pending"
    # nothing about the victim's account changed: no membership in evil, the old password works, the new does not
    assert _memberships(rt, boss.email) == {"owner@victim"}
    assert login(browser(), boss.email, "P2-attacker-pw").status_code == 400
    c = browser()
    assert login(c, boss.email, PASSWORD).status_code == 303
    assert text(soup(c.get("/incidents")).select_one(".user-box .role-badge")) == "owner"
    # the page form no longer has a password field, and a posted one is ignored the same way
    admin = browser(evil)
    assert soup(admin.get("/settings/members")).select_one("input[name=password]") is None
    assert post(admin, "/settings/members", {"email": boss.email, "role": "viewer", "password": "P3-attacker-pw"}
                ).status_code == 201
    assert login(browser(), boss.email, "P3-attacker-pw").status_code == 400
    assert _memberships(rt, boss.email) == {"owner@victim"}


def test_someone_with_an_account_sees_the_invitation_after_signing_in_and_accepts_it(client, factory, rt, browser):
    boss, evil = _victim_and_attacker(factory)
    r = client.post("/api/v1/org/members", json={"email": boss.email, "role": "member"}, headers=evil.headers)
    assert r.status_code == 201
    c = browser()
    login(c, boss.email)
    account = soup(c.get("/account"))
    assert "pending invitation" in text(account.select_one(".flash-info"))
    offer = account.select_one(".invitation-for-me")
    assert "Evil" in text(offer)
    other_org = offer["data-org-id"]
    # the invitation link, opened while signed in as its addressee, joins too; here the account page accepts it
    assert post(c, f"/account/invitations/{other_org}/accept", follow_redirects=False).status_code == 303
    assert _memberships(rt, boss.email) == {"owner@victim", "member@evil"}
    page = soup(c.get("/incidents"))
    assert text(page.select_one(".user-box .role-badge")) == "member"
    assert [text(o) for o in page.select("#org-switch option")] == ["Victim", "Evil"]
    # sign-in lands in the organization used last; the switcher moves the session (and that memory)
    again = browser()
    login(again, boss.email)
    assert text(soup(again.get("/incidents")).select_one(".user-box .role-badge")) == "member"
    victim_id = boss.actor.org_id
    assert post(again, "/account/switch", {"org_id": str(victim_id)}, follow_redirects=False).status_code == 303
    assert text(soup(again.get("/incidents")).select_one(".user-box .role-badge")) == "owner"
    third = browser()
    login(third, boss.email)
    assert text(soup(third.get("/incidents")).select_one(".user-box .role-badge")) == "owner"
    # an organization one does not belong to is a 404, as is an invitation that does not exist
    assert post(again, "/account/switch", {"org_id": str(evil.actor.org_id + 100)}).status_code == 404
    assert post(again, f"/account/invitations/{evil.actor.org_id}/accept").status_code == 404


def test_the_link_asks_an_existing_account_for_its_own_password(client, factory, rt, browser):
    boss, evil = _victim_and_attacker(factory)
    link = client.post("/api/v1/org/members", json={"email": boss.email, "role": "viewer"},
                       headers=evil.headers).json()["invite_url"]
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    c = browser()
    form = soup(c.get(path)).select_one("form.invite-accept-form")
    assert form.select_one("input[name=confirm_password]") is None  # no new password for an existing account
    assert post(c, path, {"password": "not-the-password"}).status_code == 400
    assert _memberships(rt, boss.email) == {"owner@victim"}
    assert post(c, path, {"password": PASSWORD}, follow_redirects=False).status_code == 303
    assert _memberships(rt, boss.email) == {"owner@victim", "viewer@evil"}
    assert text(soup(c.get("/incidents")).select_one(".user-box .role-badge")) == "viewer"
    assert c.get(path).status_code == 404  # one use


def test_a_link_signed_in_as_someone_else_expired_or_withdrawn_does_nothing(client, factory, rt, clock, browser):
    t = {role: factory.member(factory.org(), role, password=PASSWORD) for role in ("owner",)}
    admin = t["owner"]
    r = client.post("/api/v1/org/members", json={"email": "new@example.test", "role": "member"}, headers=admin.headers)
    path = "/" + r.json()["invite_url"].split("://", 1)[1].split("/", 1)[1]
    signed_in = browser(admin)
    assert post(signed_in, path, {}).status_code == 409
    clock.advance(hours=169)
    assert browser().get(path).status_code == 404
    assert post(browser(), path, {"password": "long-enough", "confirm_password": "long-enough"}).status_code == 404
    with db.transaction(rt.factory) as s:
        assert s.scalar(select(User.id).where(User.email == "new@example.test")) is None
    r = client.post("/api/v1/org/members", json={"email": "new@example.test", "role": "member"}, headers=admin.headers)
    fresh = "/" + r.json()["invite_url"].split("://", 1)[1].split("/", 1)[1]
    assert client.delete(f"/api/v1/org/invitations/{r.json()['id']}", headers=admin.headers).status_code == 204
    assert browser().get(fresh).status_code == 404


def test_a_signed_in_user_changes_their_own_password(client, factory, browser):
    owner = factory.member(factory.org(), "owner", password=PASSWORD)
    here, elsewhere = browser(owner), browser(owner)
    r = post(here, "/account/password", {"current_password": "wrong-one", "new_password": "brand-new-pass",
                                         "confirm_password": "brand-new-pass"})
    assert r.status_code == 422 and "current password" in text(soup(r).select_one("#account-errors"))
    r = post(here, "/account/password", {"current_password": PASSWORD, "new_password": "brand-new-pass",
                                         "confirm_password": "brand-new-pass"}, follow_redirects=False)
    assert r.status_code == 303
    assert here.get("/incidents", follow_redirects=False).status_code == 200  # this session stays
    assert elsewhere.get("/incidents", follow_redirects=False).status_code == 303  # the other one ended
    assert client.get("/api/v1/org/settings", headers=owner.headers).status_code == 200  # tokens keep working
    assert login(browser(), owner.email, PASSWORD).status_code == 400
    assert login(browser(), owner.email, "brand-new-pass").status_code == 303


def test_operator_sets_a_password_from_the_cli(settings, factory, browser, monkeypatch, capsys):
    owner = factory.member(factory.org(), "owner", password=PASSWORD)
    signed_in = browser(owner)
    monkeypatch.setenv("BLAMETRAIL_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("BLAMETRAIL_DATA_DIR", str(settings.data_dir))
    assert cli_main(["user", "set-password", owner.email.upper(), "--password", "set-by-operator"]) == 0
    assert '"sessions_ended": true' in capsys.readouterr().out
    assert signed_in.get("/incidents", follow_redirects=False).status_code == 303
    assert login(browser(), owner.email, "set-by-operator").status_code == 303
    assert cli_main(["user", "set-password", "nobody@example.test", "--password", "whatever-pw"]) != 0


def test_concurrent_invitations_of_one_email_give_one_invitation(app, factory, rt):
    """F5 (PostgreSQL): 40 parallel invites of one email were 13 × 500. Now each is 201 or 409, one row."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import serving

    admin = factory.member(factory.org(), "admin")
    with serving(app) as base, httpx.Client(base_url=base, headers=admin.headers, timeout=30) as http:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: http.post("/api/v1/org/members", json={"email": "race@example.test",
                                                                                     "role": "member"}).status_code,
                                  range(24)))
    assert set(codes) <= {201, 409} and 201 in codes, codes
    with db.transaction(rt.factory) as s:
        assert len(list(s.scalars(select(Invitation).where(Invitation.email == "race@example.test")))) == 1


def test_two_owners_demoting_each_other_at_once_leave_one_owner(app, factory, rt):
    """F3: on PostgreSQL the last-owner guard lost the race in 3 of 10 rounds; the organization's row lock holds it."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import serving

    with serving(app) as base:
        for _ in range(6):
            slug = factory.org()
            a, b = factory.member(slug, "owner"), factory.member(slug, "owner")
            with ThreadPoolExecutor(2) as pool:
                codes = list(pool.map(
                    lambda pair: httpx.patch(f"{base}/api/v1/org/members/{pair[1].actor.user_id}", json={"role": "admin"},
                                             headers=pair[0].headers, timeout=30).status_code, [(a, b), (b, a)]))
            # the loser is refused as the last owner (409) or, when the winner committed first, as an admin (403)
            assert sorted(codes) in ([200, 403], [200, 409]), codes
            with db.transaction(rt.factory) as s:
                org_id = orgs.get_org_by_slug(session=s, slug=slug).id
                assert len([m for m in orgs.list_members(session=s, org_id=org_id) if m.role == "owner"]) == 1


def test_the_setup_link_works_once_under_parallel_use(app, rt):
    """F4: 12 parallel uses of the one-time setup link created 12 organizations on PostgreSQL."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.live import serving

    with db.transaction(rt.factory) as s:
        token = orgs.create_setup_token(session=s, now=rt.clock.now())

    def attempt(n: int) -> int:
        with httpx.Client(base_url=base, headers={"accept": "text/html"}, timeout=30) as c:
            c.get("/login")
            return c.post("/setup", data={"token": token, "org_name": f"Team {n}", "org_slug": f"team{n}",
                                          "email": f"first{n}@example.test", "password": "long-enough-pw",
                                          "csrftoken": c.cookies["csrftoken"]}).status_code

    with serving(app) as base, ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(attempt, range(12)))
    with db.transaction(rt.factory) as s:
        assert len(list(s.scalars(select(Organization)))) == 1, codes
        assert len(list(s.scalars(select(User)))) == 1


@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {"email": ""}, {"email": "x@example.test", "role": "boss"}])
def test_bad_invitations_are_clear_422s(client, factory, body):
    admin = factory.member(factory.org(), "admin")
    r = client.post("/api/v1/org/members", json=body, headers=admin.headers)
    assert r.status_code == 422 and r.json()["type"] == "/problems/validation", r.text
