"""Settings → members and API tokens: roles, the owner-only owner role, the last-owner guard, tokens shown once,
foreign ids 404, CSRF on every form; and the matching JSON API (POST/PATCH/DELETE /api/v1/org/members)."""

from __future__ import annotations

import pytest

from tests.web.test_pages import PASSWORD, browser, login, post, soup, team, text  # noqa: F401 (fixtures)


def member_row(page, email: str):
    for row in page.select("tr.member-row"):
        if text(row.select_one(".member-email")) == email:
            return row
    return None


def test_members_page_lists_everyone_and_every_form_has_a_csrf_field(browser, team):
    t = team()
    c = browser(t["owner"])
    page = soup(c.get("/settings/members"))
    assert {text(r.select_one(".member-email")) for r in page.select("tr.member-row")} == {
        m.email for m in t.values()}
    forms = page.select("main form")
    assert forms and all(f.select_one("input[name=csrftoken]")["value"] == c.cookies.get("csrftoken") for f in forms)
    assert soup(c.get("/settings")).select_one("a[href='/settings/members']") is not None
    tokens = soup(c.get("/settings/tokens"))
    assert all(f.select_one("input[name=csrftoken]") for f in tokens.select("main form"))


def test_owner_invites_and_the_new_member_joins_through_the_link(browser, team):
    t = team()
    c = browser(t["owner"])
    r = post(c, "/settings/members", {"email": "New.Person@Example.test", "name": "New Person", "role": "admin"},
             follow_redirects=False)
    assert r.status_code == 201, r.text
    page = soup(r)
    assert "new.person@example.test is invited as admin" in text(page.select_one(".invite-created"))
    link = page.select_one("#invite-link")["value"]
    assert member_row(page, "new.person@example.test") is None  # nobody joins before accepting
    assert "new.person@example.test" in text(page.select_one(".invitations-table"))
    assert link not in soup(c.get("/settings/members")).text  # shown once
    other = browser()
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = soup(other.get("/" + path)).select_one("form.invite-accept-form")
    assert form.select_one("input[name=confirm_password]") is not None
    r = post(other, "/" + path, {"name": "New Person", "password": "a-good-password",
                                  "confirm_password": "a-good-password"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert text(soup(other.get("/incidents")).select_one(".user-box .role-badge")) == "admin"
    assert member_row(soup(c.get("/settings/members")), "new.person@example.test") is not None
    assert post(browser(), "/" + path, {"password": "x" * 10, "confirm_password": "x" * 10}).status_code == 404
    assert login(browser(), "new.person@example.test", "a-good-password").status_code == 303


def test_only_an_owner_grants_or_changes_the_owner_role(browser, team):
    t = team()
    admin = browser(t["admin"])
    page = soup(admin.get("/settings/members"))
    assert [o["value"] for o in page.select("#invite-role option")] == ["admin", "member", "viewer"]
    owner_row = member_row(page, t["owner"].email)
    assert owner_row.select("form") == []  # an admin cannot touch the owner
    r = post(admin, "/settings/members", {"email": "boss@example.test", "role": "owner"})
    assert r.status_code == 403
    assert "Only an owner can grant or change the owner role." in text(soup(r).select_one(".form-error"))
    r = post(admin, f"/settings/members/{t['owner'].actor.user_id}/role", {"role": "viewer"})
    assert r.status_code == 403
    r = post(admin, f"/settings/members/{t['member'].actor.user_id}/role", {"role": "owner"})
    assert r.status_code == 403
    r = post(admin, f"/settings/members/{t['owner'].actor.user_id}/remove", {"confirm": "yes"})
    assert r.status_code == 403
    # an admin may change and remove non-owners
    assert post(admin, f"/settings/members/{t['viewer'].actor.user_id}/role", {"role": "member"},
                follow_redirects=False).status_code == 303
    owner = browser(t["owner"])
    assert [o["value"] for o in soup(owner.get("/settings/members")).select("#invite-role option")] == [
        "owner", "admin", "member", "viewer"]
    assert post(owner, f"/settings/members/{t['member'].actor.user_id}/role", {"role": "owner"},
                follow_redirects=False).status_code == 303
    page = soup(owner.get("/settings/members"))
    assert member_row(page, t["member"].email).select_one("option[selected]")["value"] == "owner"


def test_the_last_owner_can_neither_be_demoted_nor_removed(browser, team):
    t = team()
    c = browser(t["owner"])
    me = t["owner"].actor.user_id
    page = soup(c.get("/settings/members"))
    row = member_row(page, t["owner"].email)
    assert row.select("form") == [] and text(row.select_one(".last-owner")) == "last owner"
    r = post(c, f"/settings/members/{me}/role", {"role": "admin"})
    assert r.status_code == 409
    assert "last owner" in text(soup(r).select_one(".form-error"))
    r = post(c, f"/settings/members/{me}/remove", {"confirm": "yes"})
    assert r.status_code == 409
    # with a second owner, the first may step down
    assert post(c, f"/settings/members/{t['admin'].actor.user_id}/role", {"role": "owner"},
                follow_redirects=False).status_code == 303
    assert post(c, f"/settings/members/{me}/role", {"role": "admin"}, follow_redirects=False).status_code == 303


def test_removing_a_member_revokes_their_tokens(browser, team, client):
    t = team()
    assert client.get("/api/v1/org/settings", headers=t["member"].headers).status_code == 200
    c = browser(t["admin"])
    r = post(c, f"/settings/members/{t['member'].actor.user_id}/remove", {"confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert member_row(soup(c.get("/settings/members")), t["member"].email) is None
    assert client.get("/api/v1/org/settings", headers=t["member"].headers).status_code == 401


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_manage_people(browser, team, role):
    t = team()
    c = browser(t[role])
    page = soup(c.get("/settings/members"))
    assert page.select("main form") == []
    assert post(c, "/settings/members", {"email": "x@example.test", "role": "viewer"}).status_code == 403
    assert post(c, f"/settings/members/{t['viewer'].actor.user_id}/role", {"role": "member"}).status_code == 403
    assert post(c, f"/settings/members/{t['viewer'].actor.user_id}/remove").status_code == 403


def test_foreign_member_ids_answer_404(browser, team):
    mine, theirs = team(), team()
    c = browser(mine["owner"])
    foreign = theirs["member"].actor.user_id
    assert post(c, f"/settings/members/{foreign}/role", {"role": "viewer"}).status_code == 404
    assert post(c, f"/settings/members/{foreign}/remove").status_code == 404
    assert post(c, "/settings/members/999999/remove").status_code == 404


def test_token_is_shown_once_and_works_until_revoked(browser, team, client):
    t = team()
    c = browser(t["member"])
    r = post(c, "/settings/tokens", {"name": "ci-deploys"})
    assert r.status_code == 201
    raw = soup(r).select_one("input.token-value")["value"]
    assert raw.startswith("bt_")
    assert "shown only this once" in text(soup(r).select_one(".token-created"))
    again = c.get("/settings/tokens")
    assert raw not in again.text and soup(again).select_one(".token-created") is None
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/org/settings", headers=headers).status_code == 200
    row = next(r for r in soup(again).select("tr.token-row") if "ci-deploys" in text(r))
    assert raw[:10] in text(row)
    r = post(c, f"/settings/tokens/{row['data-id']}/revoke", follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/org/settings", headers=headers).status_code == 401
    assert "Revoked" in text(next(r for r in soup(c.get("/settings/tokens")).select("tr.token-row")
                                  if "ci-deploys" in text(r)))


def test_members_see_their_own_tokens_and_admins_see_all(browser, team, client):
    t = team()
    member, admin = browser(t["member"]), browser(t["admin"])
    post(member, "/settings/tokens", {"name": "mine"})
    names = [text(r.select("td")[0]) for r in soup(member.get("/settings/tokens")).select("tr.token-row")]
    assert sorted(names) == ["mine", "test"]  # the factory's token and the new one
    rows = soup(admin.get("/settings/tokens")).select("tr.token-row")
    assert len(rows) == 5  # one per member of the team, plus "mine"
    admins_token = next(r["data-id"] for r in rows if t["admin"].email in text(r))
    assert post(member, f"/settings/tokens/{admins_token}/revoke").status_code == 403
    members_token = next(r["data-id"] for r in rows if "mine" in text(r))
    assert post(admin, f"/settings/tokens/{members_token}/revoke", follow_redirects=False).status_code == 303


def test_foreign_token_ids_answer_404(browser, team, client):
    mine, theirs = team(), team()
    listing = client.get("/api/v1/org/tokens", headers=theirs["owner"].headers).json()
    c = browser(mine["owner"])
    assert post(c, f"/settings/tokens/{listing[0]['id']}/revoke").status_code == 404
    assert client.get("/api/v1/org/settings", headers=theirs["owner"].headers).status_code == 200


# --- the JSON API ----------------------------------------------------------------------------------

def test_api_members_invite_change_remove(client, team, factory):
    t = team()
    h = t["admin"].headers
    r = client.post("/api/v1/org/members", json={"email": "api@example.test", "role": "member"}, headers=h)
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["role"] == "member" and inv["email"] == "api@example.test" and inv["status"] == "pending"
    assert inv["invite_url"].startswith("http") and inv["existing_account"] is False
    assert [i["email"] for i in client.get("/api/v1/org/invitations", headers=h).json()] == ["api@example.test"]
    assert "invite_url" not in client.get("/api/v1/org/invitations", headers=h).json()[0]
    assert client.delete(f"/api/v1/org/invitations/{inv['id']}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/org/invitations/{inv['id']}", headers=h).status_code == 404
    new = t["member"]
    r = client.patch(f"/api/v1/org/members/{new.actor.user_id}", json={"role": "viewer"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert client.post("/api/v1/org/members", json={"email": new.email}, headers=h).status_code == 409
    assert client.delete(f"/api/v1/org/members/{new.actor.user_id}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/org/members/{new.actor.user_id}", headers=h).status_code == 404


def test_api_member_rules(client, team):
    t, other = team(), team()
    owner_id = t["owner"].actor.user_id
    admin, owner, member = t["admin"].headers, t["owner"].headers, t["member"].headers
    assert client.post("/api/v1/org/members", json={"email": "b@example.test", "role": "owner"},
                       headers=admin).status_code == 403
    assert client.patch(f"/api/v1/org/members/{owner_id}", json={"role": "admin"}, headers=admin).status_code == 403
    assert client.delete(f"/api/v1/org/members/{owner_id}", headers=admin).status_code == 403
    assert client.patch(f"/api/v1/org/members/{t['viewer'].actor.user_id}", json={"role": "admin"},
                        headers=member).status_code == 403
    assert client.post("/api/v1/org/members", json={"email": "c@example.test"}, headers=member).status_code == 403
    r = client.patch(f"/api/v1/org/members/{owner_id}", json={"role": "admin"}, headers=owner)
    assert r.status_code == 409 and "last owner" in r.json()["detail"]
    assert client.delete(f"/api/v1/org/members/{owner_id}", headers=owner).status_code == 409
    assert client.patch(f"/api/v1/org/members/{t['viewer'].actor.user_id}", json={"role": "boss"},
                        headers=owner).status_code == 422
    foreign = other["member"].actor.user_id
    assert client.patch(f"/api/v1/org/members/{foreign}", json={"role": "viewer"}, headers=owner).status_code == 404
    assert client.delete(f"/api/v1/org/members/{foreign}", headers=owner).status_code == 404
    r = client.post("/api/v1/org/members", json={"email": "co@example.test", "role": "owner"}, headers=owner)
    assert r.status_code == 201
    assert client.patch(f"/api/v1/org/members/{owner_id}", json={"role": "admin"}, headers=owner).status_code == 409
    assert client.patch(f"/api/v1/org/members/{t['admin'].actor.user_id}", json={"role": "owner"},
                        headers=owner).status_code == 200  # an invitation is no owner yet; a member made owner is
    assert client.patch(f"/api/v1/org/members/{owner_id}", json={"role": "admin"}, headers=owner).status_code == 200
