"""Invitations: admins invite an email address; only the invitee accepts, and only the invitee sets a password.

An invitation never touches an existing account: inviting the email of someone who already has an account only
creates a pending invitation, which that person sees and accepts after signing in. Someone without an account
opens the one-time link (its raw token is shown once to the inviter and only its hash is stored) and chooses
their own password there.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blametrail.errors import Conflict, NotFound, ValidationFailed
from blametrail.orgs.models import Invitation, Membership, User
from blametrail.orgs.passwords import hash_password
from blametrail.orgs.service import Actor, check_grant, normalize_email

MIN_PASSWORD = 8


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def check_new_password(password: str) -> None:
    """Raise ValidationFailed unless the password is acceptable."""
    if len(password or "") < MIN_PASSWORD:
        raise ValidationFailed(f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(password) > 1024:
        raise ValidationFailed("Passwords can have at most 1024 characters.")


def invite(*, session: Session, actor: Actor, email: str, role: str, name: str, now: datetime,
           ttl: timedelta) -> tuple[Invitation, str, bool]:
    """Invite an email to the actor's organization; return the invitation, its raw token, and whether an account exists.

    Inviting an address that already has a pending invitation renews it (new link, new role, new expiry): the old
    link stops working.
    """
    email = normalize_email(email)
    check_grant(by_role=actor.role, role=role)
    user = session.scalar(select(User).where(User.email == email))
    if user is not None and session.scalar(select(Membership.id).where(Membership.org_id == actor.org_id,
                                                                       Membership.user_id == user.id)):
        raise Conflict(f"{email} is already a member of this organization.")
    raw = secrets.token_urlsafe(32)
    inv = session.scalar(select(Invitation).where(Invitation.org_id == actor.org_id, Invitation.email == email))
    if inv is None:
        inv = Invitation(org_id=actor.org_id, email=email)
        session.add(inv)
    inv.role, inv.name, inv.token_hash = role, (name or "")[:200], _digest(raw)
    inv.invited_by, inv.created_at, inv.expires_at = actor.label[:320], now, now + ttl
    try:
        session.flush()
    except IntegrityError:  # why: a concurrent invite of the same address committed first
        raise Conflict(f"{email} was invited by someone else at the same moment; reload and try again.") from None
    return inv, raw, user is not None


def list_for_org(*, session: Session, org_id: int) -> list[Invitation]:
    """Return the organization's pending invitations (expired ones included, marked by expires_at), newest first."""
    return list(session.scalars(select(Invitation).where(Invitation.org_id == org_id).order_by(Invitation.id.desc())))


def revoke(*, session: Session, org_id: int, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation of this organization."""
    inv = session.scalar(select(Invitation).where(Invitation.id == invitation_id, Invitation.org_id == org_id))
    if inv is None:
        raise NotFound(f"No invitation {invitation_id} in this organization.")
    session.delete(inv)
    session.flush()
    return inv


def by_token(*, session: Session, raw: str, now: datetime) -> Invitation:
    """Return the live invitation a link's token names, or raise NotFound (unknown, used, withdrawn or expired)."""
    inv = session.scalar(select(Invitation).where(Invitation.token_hash == _digest(raw or "")))
    if inv is None:
        raise NotFound("This invitation link is not valid: it was used, withdrawn or replaced by a newer one.")
    if inv.expires_at <= now:
        raise NotFound("This invitation link has expired; ask an admin of the organization to invite you again.")
    return inv


def pending_for(*, session: Session, email: str, now: datetime) -> list[Invitation]:
    """Return the live invitations addressed to an email, oldest first."""
    return list(session.scalars(select(Invitation).where(Invitation.email == normalize_email(email),
                                                         Invitation.expires_at > now).order_by(Invitation.id)))


def pending_from(*, session: Session, user: User, org_id: int, now: datetime) -> Invitation:
    """Return the live invitation from an organization to this user, or raise NotFound."""
    inv = session.scalar(select(Invitation).where(Invitation.org_id == org_id, Invitation.email == user.email,
                                                  Invitation.expires_at > now))
    if inv is None:
        raise NotFound("You have no pending invitation from that organization.")
    return inv


def _join(session: Session, inv: Invitation, user: User, now: datetime) -> Membership:
    """Turn the invitation into a membership and use it up (one use, ever)."""
    gone = session.execute(delete(Invitation).where(Invitation.id == inv.id))
    if gone.rowcount != 1:  # why: two tabs accepting at once; the first one wins, the second sees it is used
        raise NotFound("This invitation was already used.")
    if session.scalar(select(Membership.id).where(Membership.org_id == inv.org_id, Membership.user_id == user.id)):
        raise Conflict("You are already a member of this organization.")
    m = Membership(org_id=inv.org_id, user_id=user.id, role=inv.role, created_at=now)
    session.add(m)
    user.last_org_id = inv.org_id
    session.flush()
    return m


def accept(*, session: Session, inv: Invitation, user: User, now: datetime) -> Membership:
    """Accept an invitation as a signed-in user; it must be addressed to that user's email."""
    if inv.email != user.email:
        raise NotFound("This invitation is addressed to another email address.")
    return _join(session, inv, user, now)


def accept_new_account(*, session: Session, inv: Invitation, name: str, password: str, now: datetime) -> Membership:
    """Create the invitee's account with the password they chose, and join the organization."""
    check_new_password(password)
    if session.scalar(select(User.id).where(User.email == inv.email)):
        raise Conflict(f"An account for {inv.email} already exists: sign in to accept this invitation.")
    user = User(email=inv.email, name=(name or inv.name or "")[:200], password_hash=hash_password(password),
                created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"An account for {inv.email} was just created: sign in to accept this invitation.") from None
    return _join(session, inv, user, now)


def decline(*, session: Session, inv: Invitation) -> None:
    """Decline an invitation addressed to oneself."""
    session.delete(inv)
    session.flush()


def purge_expired(*, session: Session, before: datetime, limit: int) -> int:
    """Delete up to `limit` invitations that expired before `before`; return how many."""
    ids = list(session.scalars(select(Invitation.id).where(Invitation.expires_at < before).limit(limit)))
    if ids:
        session.execute(delete(Invitation).where(Invitation.id.in_(ids)))
    return len(ids)
