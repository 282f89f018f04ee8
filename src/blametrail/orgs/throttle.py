"""Login throttling: failed logins per account and per client address, counted in the database in a sliding window.

An attempt is admitted (and counted) before the password is checked, in a transaction of its own, so concurrent
guesses from many processes cannot slip past the limit; a success takes its attempt back and clears the account.
Each subject's row is locked (FOR UPDATE on PostgreSQL; SQLite serializes writers) while it is read and changed,
always in sorted subject order so two logins never wait on each other in a cycle.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import RateLimited
from blametrail.orgs.models import LoginAttempt, LoginThrottle

PURGE_BATCH = 100
IPV6_PREFIX = 64  # one IPv6 customer usually holds a whole /64


@dataclass(frozen=True)
class Limits:
    account_max: int
    address_max: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """Read the limits from the settings."""
        return cls(account_max=settings.login_max_failures, address_max=settings.login_ip_max_failures,
                   window=timedelta(seconds=settings.login_window_seconds),
                   lockout=timedelta(seconds=settings.login_lockout_seconds))


@dataclass(frozen=True)
class Attempt:
    """An admitted attempt: its counted rows by subject, the limit of each, and the account a success clears."""

    limits: dict[str, int]
    attempt_ids: dict[str, int]
    account: str | None


# --- who is trying ----------------------------------------------------------------------------------------------

def account_subject(email: str) -> str:
    """Return the subject of an account: its normalized email, hashed (unknown emails are counted the same way)."""
    return "email:" + hashlib.sha256((email or "").strip().lower().encode()).hexdigest()


def address_subject(address: str) -> str:
    """Return the subject of a client address (an IPv6 address stands for its /64)."""
    ip = _parse(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return "ip:" + str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return "ip:" + (str(ip) if ip is not None else (address or "unknown")[:60])


@lru_cache(maxsize=8)
def trusted_networks(text: str) -> tuple:
    """Parse the trusted_proxies setting (comma-separated addresses or CIDRs)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in (p.strip() for p in text.split(",")) if item)


def trusted_peer(peer: str | None, trusted: tuple) -> bool:
    """Return whether the socket peer is one of the trusted proxies."""
    address = _parse(peer)
    return address is not None and _trusted(address, trusted)


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple) -> str:
    """Return the client's address: the socket peer or, behind trusted proxies, the rightmost untrusted forwarded hop.

    Hops left of the first untrusted one (read from the right) are whatever the client wrote, so they never count.
    """
    address = _parse(peer)
    if address is None:
        return peer or "unknown"
    if not trusted or not forwarded_for or not _trusted(address, trusted):
        return str(address)
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        ip = _parse(hop)
        if ip is None:  # why: a hop we cannot read ends the chain; the last proxy that gave it is what we know
            break
        address = ip
        if not _trusted(ip, trusted):
            break
    return str(address)


def _parse(text: str | None):
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip, trusted: tuple) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


# --- counting -----------------------------------------------------------------------------------------------------

def login_subjects(*, email: str, address: str, limits: Limits) -> dict[str, int]:
    """Return the subjects a login attempt counts against, with their limits."""
    return {account_subject(email): limits.account_max, address_subject(address): limits.address_max}


def admit(*, session: Session, subjects: dict[str, int], now: datetime, limits: Limits,
          account: str | None = None) -> Attempt:
    """Count one attempt against every subject, or raise RateLimited (counting nothing) when one is locked or full."""
    rows = {subject: _locked_row(session, subject, now) for subject in sorted(subjects)}
    cutoff = now - limits.window
    wait = 0
    for subject, row in rows.items():
        if row.locked_until is not None and row.locked_until > now:
            wait = max(wait, _seconds(row.locked_until - now))
            continue
        session.execute(delete(LoginAttempt).where(LoginAttempt.throttle_id == row.id, LoginAttempt.at <= cutoff))
        if _count(session, row.id, cutoff) >= subjects[subject]:
            wait = max(wait, 1)  # why: attempts still in flight fill it; they end as a lock or are taken back
    if wait:
        raise RateLimited(_message(wait), retry_after=wait)
    ids = {}
    for subject, row in rows.items():
        row.updated_at = now
        attempt = LoginAttempt(throttle_id=row.id, at=now)
        session.add(attempt)
        session.flush()
        ids[subject] = attempt.id
    purge_stale(session=session, now=now, limits=limits)
    return Attempt(limits=dict(subjects), attempt_ids=ids, account=account)


def record_failure(*, session: Session, attempt: Attempt, now: datetime, limits: Limits) -> None:
    """Keep the attempt as a failure; lock every subject whose window is now full."""
    cutoff = now - limits.window
    for subject in sorted(attempt.limits):
        row = _locked_row(session, subject, now)
        if row.locked_until is not None and row.locked_until > now:
            continue  # a concurrent failure locked it already
        if _count(session, row.id, cutoff) >= attempt.limits[subject]:
            row.locked_until = now + limits.lockout
            session.execute(delete(LoginAttempt).where(LoginAttempt.throttle_id == row.id))  # why: the lock counts now
    session.flush()


def record_success(*, session: Session, attempt: Attempt, now: datetime) -> None:
    """Take the attempt back and clear the account's failures (the address keeps its other failures)."""
    for subject in sorted(attempt.limits):
        row = _locked_row(session, subject, now)
        if subject == attempt.account:
            session.execute(delete(LoginAttempt).where(LoginAttempt.throttle_id == row.id))
            row.locked_until = None
        elif subject in attempt.attempt_ids:
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.attempt_ids[subject]))
    session.flush()


def refund(*, session: Session, attempt: Attempt, now: datetime) -> None:
    """Take the attempt back without clearing anything (it failed for a reason that is not a wrong secret)."""
    record_success(session=session, attempt=Attempt(attempt.limits, attempt.attempt_ids, None), now=now)


def purge_stale(*, session: Session, now: datetime, limits: Limits, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` subjects untouched for a window and a lockout (rows others hold are skipped)."""
    horizon = now - limits.window - limits.lockout
    ids = list(session.scalars(
        select(LoginThrottle.id)
        .where(LoginThrottle.updated_at < horizon,
               or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now))
        .order_by(LoginThrottle.id).limit(limit).with_for_update(skip_locked=True)))
    if ids:
        session.execute(delete(LoginAttempt).where(LoginAttempt.throttle_id.in_(ids)))
        session.execute(delete(LoginThrottle).where(LoginThrottle.id.in_(ids)),
                        execution_options={"synchronize_session": False})
    return len(ids)


def _locked_row(session: Session, subject: str, now: datetime) -> LoginThrottle:
    statement = db.dialect_insert(session, LoginThrottle).values(subject=subject, updated_at=now).on_conflict_do_nothing(
        index_elements=["subject"])
    query = (select(LoginThrottle).where(LoginThrottle.subject == subject).with_for_update()
             .execution_options(populate_existing=True))
    for _ in range(3):  # why: a purge may delete the row between the insert and the lock
        session.execute(statement)
        row = session.scalar(query)
        if row is not None:
            return row
    raise RuntimeError(f"could not lock the login throttle row {subject!r}")


def _count(session: Session, throttle_id: int, cutoff: datetime) -> int:
    return session.scalar(select(func.count(LoginAttempt.id))
                          .where(LoginAttempt.throttle_id == throttle_id, LoginAttempt.at > cutoff)) or 0


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _message(seconds: int) -> str:
    if seconds < 60:
        when = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = math.ceil(seconds / 60)
        when = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed logins. Try again in {when}."
