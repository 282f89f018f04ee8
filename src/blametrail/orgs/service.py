"""Organizations, people, tokens, login sessions, settings and the monthly quota."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PlanNotEligible,
    QuotaExceeded,
    Unauthenticated,
    ValidationFailed,
)
from blametrail.orgs.models import (
    PLAN_LIMITS,
    PLANS,
    ROLES,
    ApiToken,
    LoginSession,
    Membership,
    MonthlyUsage,
    Organization,
    SetupToken,
    User,
)
from blametrail.orgs.passwords import hash_password, verify_password

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
TOKEN_PREFIX = "bt_"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user in one organization with one role."""

    user_id: int
    org_id: int
    role: str
    label: str  # the user's name or email, used as author on records
    token_id: int | None = None  # the API token that authenticated this request (None on pages)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """Return the canonical (trimmed, lowercased) form of an email address, or raise ValidationFailed."""
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise ValidationFailed(f"Invalid email address {email[:80]!r}.")
    return email


def month_of(now: datetime) -> str:
    """Return the UTC calendar month of a time as YYYY-MM."""
    return now.strftime("%Y-%m")


def next_month_start(now: datetime) -> datetime:
    """Return the first instant of the next UTC calendar month."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def create_org(*, session: Session, slug: str, name: str, plan: str, now: datetime) -> Organization:
    """Create an organization."""
    if not SLUG_RE.match(slug or ""):
        raise ValidationFailed(f"Invalid slug {slug!r}: use lowercase letters, digits and dashes (max 63).")
    if plan not in PLANS:
        raise ValidationFailed(f"Unknown plan {plan!r}: choose one of {', '.join(PLANS)}.")
    if session.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"An organization with slug {slug!r} already exists.")
    org = Organization(slug=slug, name=name or slug, plan=plan, ai_enabled=True, created_at=now)
    session.add(org)
    session.flush()
    return org


def get_org_by_slug(*, session: Session, slug: str) -> Organization:
    """Return the organization with this slug or raise NotFound."""
    org = session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"No organization with slug {slug!r}.")
    return org


def set_plan(*, session: Session, org: Organization, plan: str) -> Organization:
    """Change an organization's plan (operator action)."""
    if plan not in PLANS:
        raise ValidationFailed(f"Unknown plan {plan!r}: choose one of {', '.join(PLANS)}.")
    org.plan = plan
    session.flush()
    return org


def create_user(
    *, session: Session, email: str, org: Organization, role: str, password: str | None, now: datetime,
    name: str = "",
) -> Membership:
    """Create a user (or reuse one with this email) and make them a member (operator CLI, demo and first run only).

    Never reachable from an organization's admins: they invite (orgs.invitations), and only the account's owner
    sets its password.
    """
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if password is not None and len(password) < 8:
        raise ValidationFailed("Passwords need at least 8 characters.")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, created_at=now,
                    password_hash=hash_password(password) if password else None)
        session.add(user)
        session.flush()
    else:
        if password:
            user.password_hash = hash_password(password)
        if session.scalar(select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user.id)):
            raise Conflict(f"{email} is already a member of {org.slug}.")
    membership = Membership(org_id=org.id, user_id=user.id, role=role, created_at=now)
    session.add(membership)
    session.flush()
    return membership


def set_password(*, session: Session, email: str, password: str) -> User:
    """Set an account's password (operator CLI) and end all of its login sessions."""
    if len(password or "") < 8:
        raise ValidationFailed("Passwords need at least 8 characters.")
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"No account with email {email.strip().lower()!r}.")
    user.password_hash = hash_password(password)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()
    return user


def change_own_password(*, session: Session, user_id: int, current: str, new: str, keep_session: str) -> User:
    """Change one's own password (the current one is required); every other login session of the account ends."""
    user = session.get(User, user_id)
    if user is None or not verify_password(current or "", user.password_hash):
        raise ValidationFailed("The current password is not correct.")
    if len(new or "") < 8:
        raise ValidationFailed("The new password needs at least 8 characters.")
    if len(new) > 1024:
        raise ValidationFailed("Passwords can have at most 1024 characters.")
    user.password_hash = hash_password(new)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id,
                                               LoginSession.key_hash != _digest(keep_session or "")))
    session.flush()
    return user


def memberships_of(*, session: Session, user_id: int) -> list[Membership]:
    """Return every membership of a user, oldest first."""
    return list(session.scalars(select(Membership).where(Membership.user_id == user_id).order_by(Membership.id)))


def switch_org(*, session: Session, raw: str, user_id: int, org_id: int) -> Membership:
    """Move a login session to another organization the user belongs to (a foreign one is NotFound)."""
    m = get_membership_by_user(session=session, org_id=org_id, user_id=user_id)
    session.execute(update(LoginSession).where(LoginSession.key_hash == _digest(raw or ""),
                                               LoginSession.user_id == user_id).values(org_id=org_id))
    m.user.last_org_id = org_id
    session.flush()
    return m


def get_membership(*, session: Session, org_id: int, email: str) -> Membership:
    """Return a user's membership in an organization or raise NotFound."""
    m = session.scalar(
        select(Membership).join(User).where(Membership.org_id == org_id, User.email == email.strip().lower())
    )
    if m is None:
        raise NotFound(f"{email} is not a member of this organization.")
    return m


def get_membership_by_user(*, session: Session, org_id: int, user_id: int) -> Membership:
    """Return a user's membership in an organization or raise NotFound."""
    m = session.scalar(select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
                       .execution_options(populate_existing=True))
    if m is None:
        raise NotFound("Not a member of this organization.")
    return m


def list_members(*, session: Session, org_id: int) -> list[Membership]:
    """Return the organization's memberships, oldest first."""
    return list(session.scalars(select(Membership).where(Membership.org_id == org_id).order_by(Membership.id)))


def actor_for(m: Membership) -> Actor:
    """Return the Actor a membership acts as."""
    return Actor(user_id=m.user_id, org_id=m.org_id, role=m.role, label=m.user.display_name)


def create_token(*, session: Session, membership: Membership, name: str, now: datetime) -> tuple[ApiToken, str]:
    """Create an API token; the raw value is returned once and only its hash is stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(org_id=membership.org_id, user_id=membership.user_id, name=name[:200],
                     token_hash=_digest(raw), prefix=raw[:10], created_at=now)
    session.add(token)
    session.flush()
    return token, raw


def list_tokens(*, session: Session, org_id: int, user_id: int | None = None) -> list[ApiToken]:
    """Return the organization's tokens (optionally one user's), newest first."""
    q = select(ApiToken).where(ApiToken.org_id == org_id)
    if user_id is not None:
        q = q.where(ApiToken.user_id == user_id)
    return list(session.scalars(q.order_by(ApiToken.id.desc())))


def revoke_token(*, session: Session, org_id: int, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token of this organization."""
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.org_id == org_id))
    if token is None:
        raise NotFound(f"No token {token_id} in this organization.")
    if token.revoked_at is None:
        token.revoked_at = now
    session.flush()
    return token


def authenticate_token(*, session: Session, raw: str, now: datetime) -> Actor:
    """Return the Actor of a bearer token or raise Unauthenticated."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(raw or "")))
    if token is None or token.revoked_at is not None:
        raise Unauthenticated("The API token is missing, unknown or revoked.")
    m = session.scalar(select(Membership).where(Membership.org_id == token.org_id, Membership.user_id == token.user_id))
    if m is None:
        raise Unauthenticated("The API token's user is no longer a member of its organization.")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # why: throttled so reads do not write on every request
    return replace(actor_for(m), token_id=token.id)


def check_password(*, session: Session, email: str, password: str) -> User:
    """Return the user whose email and password match, else raise Unauthenticated."""
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if not verify_password(password or "", user.password_hash if user else None) or user is None:
        raise Unauthenticated("Wrong email or password.")
    return user


def login_memberships(*, session: Session, user: User) -> list[Membership]:
    """Return the memberships a signed-in user may land in, the one used last first; raise if there are none."""
    memberships = memberships_of(session=session, user_id=user.id)
    if not memberships:
        raise Unauthenticated("This account belongs to no organization yet; open your invitation link to join one.")
    # why: sign-in lands in the organization used last
    return sorted(memberships, key=lambda m: m.org_id != user.last_org_id)


def create_login_session(*, session: Session, membership: Membership, now: datetime, max_age: int) -> str:
    """Start a login session; return its raw key (kept only in the signed cookie)."""
    raw = secrets.token_urlsafe(32)
    membership.user.last_org_id = membership.org_id
    session.add(LoginSession(key_hash=_digest(raw), user_id=membership.user_id, org_id=membership.org_id,
                             created_at=now, expires_at=now + timedelta(seconds=max_age)))
    session.flush()
    return raw


def session_actor(*, session: Session, raw: str, now: datetime) -> Actor | None:
    """Return the Actor of a live login session, or None."""
    ls = session.scalar(select(LoginSession).where(LoginSession.key_hash == _digest(raw)))
    if ls is None or ls.expires_at <= now:
        return None
    m = session.scalar(select(Membership).where(Membership.org_id == ls.org_id, Membership.user_id == ls.user_id))
    return actor_for(m) if m else None


def end_login_session(*, session: Session, raw: str) -> None:
    """Delete a login session."""
    ls = session.scalar(select(LoginSession).where(LoginSession.key_hash == _digest(raw)))
    if ls is not None:
        session.delete(ls)
        session.flush()


def get_org(*, session: Session, org_id: int) -> Organization:
    """Return an organization by id."""
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organization.")
    return org


def set_ai_enabled(*, session: Session, org_id: int, enabled: bool) -> Organization:
    """Turn the organization's AI features on or off."""
    org = get_org(session=session, org_id=org_id)
    org.ai_enabled = bool(enabled)
    session.flush()
    return org


def set_public_postmortems(*, session: Session, org_id: int, enabled: bool) -> Organization:
    """Allow or stop serving customer-facing postmortems at their public addresses."""
    org = get_org(session=session, org_id=org_id)
    org.public_postmortems = bool(enabled)
    session.flush()
    return org


def usage(*, session: Session, org: Organization, now: datetime) -> dict:
    """Return this month's postmortem usage: plan, month, used, limit."""
    month = month_of(now)
    used = session.scalar(
        select(MonthlyUsage.used).where(MonthlyUsage.org_id == org.id, MonthlyUsage.month == month)
    ) or 0
    return {"plan": org.plan, "month": month, "used": used, "limit": PLAN_LIMITS[org.plan],
            "resets_at": next_month_start(now)}


def check_quota(*, org: Organization, used: int, now: datetime) -> None:
    """Raise PlanNotEligible or QuotaExceeded when a new postmortem is not allowed (read-only check)."""
    limit = PLAN_LIMITS[org.plan]
    if limit == 0:
        raise PlanNotEligible(f"The {org.plan} plan does not include postmortems; upgrade to starter or pro.")
    if used >= limit:
        resets = next_month_start(now).strftime("%Y-%m-%d")
        raise QuotaExceeded(
            f"{used}/{limit} postmortems used in {month_of(now)} on the {org.plan} plan; the quota resets on {resets} (UTC).",
            used=used, limit=limit,
        )


def consume_quota(*, session: Session, org: Organization, now: datetime) -> None:
    """Count one new postmortem against this month, atomically, or raise when the plan or quota forbids it."""
    limit = PLAN_LIMITS[org.plan]
    month = month_of(now)
    check_quota(org=org, used=0, now=now)
    session.execute(
        db.dialect_insert(session, MonthlyUsage).values(org_id=org.id, month=month, used=0)
        .on_conflict_do_nothing(index_elements=["org_id", "month"])
    )
    result = session.execute(
        update(MonthlyUsage)
        .where(MonthlyUsage.org_id == org.id, MonthlyUsage.month == month, MonthlyUsage.used < limit)
        .values(used=MonthlyUsage.used + 1)
    )
    if result.rowcount != 1:
        check_quota(org=org, used=limit, now=now)


def user_count(*, session: Session) -> int:
    """Return how many users exist (0 means first run)."""
    return session.scalar(select(func.count(User.id))) or 0


def create_setup_token(*, session: Session, now: datetime) -> str:
    """Issue the one-time first-run token that lets someone create the first owner."""
    raw = secrets.token_urlsafe(24)
    session.add(SetupToken(token_hash=_digest(raw), created_at=now))
    session.flush()
    return raw


def complete_setup(
    *, session: Session, token: str, org_slug: str, org_name: str, email: str, password: str, now: datetime,
) -> Membership:
    """Create the first organization and its owner with a valid setup token (first run only)."""
    if user_count(session=session) > 0:
        raise Conflict("Setup is already complete; log in instead.")
    if not password or len(password) < 8:
        raise ValidationFailed("Passwords need at least 8 characters.")
    # why: deleting the token is the claim; parallel uses of one link wait on its row and then find it gone
    if session.execute(delete(SetupToken).where(SetupToken.token_hash == _digest(token or ""))).rowcount != 1:
        if user_count(session=session) > 0:
            raise Conflict("Setup is already complete; log in instead.")
        raise Unauthenticated("The setup link is invalid; use the one `blametrail serve` printed.")
    org = create_org(session=session, slug=org_slug, name=org_name, plan="pro", now=now)  # why: a self-hosted first run should draft at once
    m = create_user(session=session, email=email, org=org, role="owner", password=password, now=now)
    session.execute(SetupToken.__table__.delete())
    return m


# --- members: grant, change, remove (the role rules that need more than the role table) ------------

def check_grant(*, by_role: str, role: str, current_role: str | None = None) -> None:
    """Raise unless `by_role` may give `role` (to someone whose role is `current_role`): only owners touch owners."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if by_role not in ("owner", "admin"):
        raise Forbidden(f"The {by_role} role cannot manage members; this needs one of: owner, admin.")
    if by_role != "owner" and (role == "owner" or current_role == "owner"):
        raise Forbidden("Only an owner can grant or change the owner role.")


def _lock_members(session: Session, org_id: int) -> None:
    """Serialize member changes of one organization until the transaction ends."""
    # why: two owners demoting each other at once must not both see "another owner is left"; the organization's
    # row lock orders them, and each then reads committed roles (SQLite already serializes writers: BEGIN IMMEDIATE)
    session.execute(select(Organization.id).where(Organization.id == org_id).with_for_update())


def _owner_count(session: Session, org_id: int) -> int:
    return session.scalar(select(func.count(Membership.id)).where(Membership.org_id == org_id,
                                                                  Membership.role == "owner")) or 0


def change_role(*, session: Session, org_id: int, user_id: int, role: str, by_role: str) -> Membership:
    """Change a member's role; only owners grant or take away the owner role, and the last owner stays one."""
    _lock_members(session, org_id)
    m = get_membership_by_user(session=session, org_id=org_id, user_id=user_id)
    check_grant(by_role=by_role, role=role, current_role=m.role)
    if m.role == "owner" and role != "owner" and _owner_count(session, org_id) <= 1:
        raise Conflict("This is the organization's last owner: make someone else owner first.")
    m.role = role
    session.flush()
    return m


def remove_member(*, session: Session, org_id: int, user_id: int, by_role: str, now: datetime) -> None:
    """Remove a member (never the last owner); their tokens for this organization are revoked."""
    _lock_members(session, org_id)
    m = get_membership_by_user(session=session, org_id=org_id, user_id=user_id)
    check_grant(by_role=by_role, role=m.role, current_role=m.role)
    if m.role == "owner" and _owner_count(session, org_id) <= 1:
        raise Conflict("This is the organization's last owner and cannot be removed.")
    session.execute(update(ApiToken).where(ApiToken.org_id == org_id, ApiToken.user_id == user_id,
                                           ApiToken.revoked_at.is_(None)).values(revoked_at=now))
    session.execute(LoginSession.__table__.delete().where(LoginSession.org_id == org_id,
                                                          LoginSession.user_id == user_id))
    session.delete(m)
    session.flush()
