"""Login, logout and the first-run setup page."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import DomainError, RateLimited, Unauthenticated
from blametrail.orgs import invitations, throttle
from blametrail.orgs import service as orgs
from blametrail.orgs.models import Membership
from blametrail.web.deps import SESSION_KEY, MaybePageActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, parse_restore, redirect, render, safe_next

router = APIRouter()


def _start_login(request: Request, *, session, rt, membership: Membership, now) -> None:
    """End any previous login, then start a fresh session under a new cookie (no session fixation)."""
    old = request.session.get(SESSION_KEY)
    if old:
        orgs.end_login_session(session=session, raw=old)
    request.session.clear()
    raw = orgs.create_login_session(session=session, membership=membership, now=now,
                                    max_age=rt.settings.session_max_age_seconds)
    request.session[SESSION_KEY] = raw


def _restore_context(form) -> dict:
    """Carry the kept fields through a failed login attempt (wrong password, throttled)."""
    restore = parse_restore(str(form.get("restore") or ""))
    action = safe_next(field(form, "restore_action"), default="")
    if not restore or not action:
        return {}
    return {"restore": json.dumps(restore), "restore_action": action, "expired": True}


@router.get("/")
def home():
    return redirect("/incidents")


@router.get("/login")
def login_page(request: Request, actor: MaybePageActor, session: SessionDep, next: str = ""):
    if actor is not None:
        return redirect(safe_next(next))
    if orgs.user_count(session=session) == 0:
        return render(request, "login.html", {"next": next, "first_run": True})
    return render(request, "login.html", {"next": next})


def client_address(request: Request, settings) -> str:
    """Return the client's address: the socket peer, or the hop trusted proxies forwarded (set by web/forwarded.py)."""
    return request.client.host if request.client else "unknown"


def _admit(session, rt, now, subjects: dict[str, int], account: str | None = None) -> throttle.Attempt:
    """Count the attempt before any secret is checked, committed at once so concurrent guesses see it."""
    limits = throttle.Limits.from_settings(rt.settings)
    try:
        attempt = throttle.admit(session=session, subjects=subjects, now=now, limits=limits, account=account)
    except RateLimited:
        db.rollback(session)
        raise
    db.commit(session)  # why: other processes must count it now, and no row lock may last through the password check
    return attempt


def _throttled(request: Request, template: str, context: dict, exc: RateLimited):
    return render(request, template, {**context, "error": exc.detail}, status_code=429,
                  headers={"Retry-After": str(exc.retry_after)})


@router.post("/login")
def login(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep, now: NowDep):
    email, password, next_url = field(form, "email"), form.get("password") or "", field(form, "next")
    limits = throttle.Limits.from_settings(rt.settings)
    subjects = throttle.login_subjects(email=email, address=client_address(request, rt.settings), limits=limits)
    try:  # why: a locked account or address is refused before the password is looked at, known email or not
        attempt = _admit(session, rt, now, subjects, account=throttle.account_subject(email))
    except RateLimited as exc:
        return _throttled(request, "login.html", {"next": next_url, "email": email, **_restore_context(form)}, exc)
    try:
        user = _checked(session, now, limits, attempt, email, str(password))
        memberships = orgs.login_memberships(session=session, user=user)
    except Unauthenticated as exc:
        return render(request, "login.html", {"next": next_url, "email": email, "error": exc.detail,
                                              **_restore_context(form)}, status_code=400)
    _start_login(request, session=session, rt=rt, membership=memberships[0], now=now)
    waiting = invitations.pending_for(session=session, email=user.email, now=now)
    if waiting:
        flash(request, f"You have {len(waiting)} pending invitation{'s' if len(waiting) > 1 else ''} to join "
              + ", ".join(i.org.name for i in waiting) + ": see your account page to accept.", "info")
    kept = _restore_context(form)
    if kept:
        # why: a page, not a redirect: the text goes back into the form in this browser only (static/restore.js puts
        # it in the tab's sessionStorage and opens the page); nothing is re-sent, the person checks it and sends it
        fields = json.loads(kept["restore"])
        actor = orgs.actor_for(memberships[0])
        request.state.memberships = [(m.org_id, m.org.name) for m in memberships]  # why: the header shows who signed in
        return render(request, "login_restored.html", {
            "next": safe_next(next_url), "restore": kept["restore"], "restore_action": kept["restore_action"],
            "fields": fields}, actor=actor)
    return redirect(safe_next(next_url))


def _checked(session, now, limits, attempt, email: str, password: str):
    """Check an admitted attempt's password; count a failure against its subjects."""
    try:
        user = orgs.check_password(session=session, email=email, password=password)
    except Unauthenticated:
        throttle.record_failure(session=session, attempt=attempt, now=now, limits=limits)
        raise
    throttle.record_success(session=session, attempt=attempt, now=now)
    return user


def verify_password_attempt(request: Request, *, session, rt, now, email: str, password: str):
    """Check an email and password under the login throttle (RateLimited or Unauthenticated on failure)."""
    limits = throttle.Limits.from_settings(rt.settings)
    subjects = throttle.login_subjects(email=email, address=client_address(request, rt.settings), limits=limits)
    attempt = _admit(session, rt, now, subjects, account=throttle.account_subject(email))
    return _checked(session, now, limits, attempt, email, password)


@router.post("/logout")
def logout(request: Request, session: SessionDep):
    raw = request.session.get(SESSION_KEY)
    if raw:
        orgs.end_login_session(session=session, raw=raw)
    request.session.clear()
    flash(request, "You are logged out.")
    return redirect("/login")


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug or "team"


@router.get("/setup")
def setup_page(request: Request, session: SessionDep, token: str = ""):
    if orgs.user_count(session=session) > 0:
        return redirect("/login")
    if not token:
        return render(request, "setup.html", {"token": "", "error": (
            "Open the setup link that `blametrail serve` printed; it carries a one-time token.")}, status_code=400)
    return render(request, "setup.html", {"token": token})


@router.post("/setup")
def setup(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep, now: NowDep):
    if orgs.user_count(session=session) > 0:
        return redirect("/login")
    values = {k: field(form, k) for k in ("token", "org_name", "org_slug", "email")}
    slug = values["org_slug"] or _slugify(values["org_name"])
    limits = throttle.Limits.from_settings(rt.settings)
    address = throttle.address_subject(client_address(request, rt.settings))
    try:  # why: the setup token is a secret too; wrong ones count against the address like failed logins
        attempt = _admit(session, rt, now, {address: limits.address_max})
    except RateLimited as exc:
        return _throttled(request, "setup.html", values, exc)
    try:
        membership = orgs.complete_setup(
            session=session, token=values["token"], org_slug=slug, org_name=values["org_name"] or slug,
            email=values["email"], password=str(form.get("password") or ""), now=now)
    except DomainError as exc:
        db.rollback(session)  # why: setup may have created the organization before failing on the owner
        if exc.status == 401:
            throttle.record_failure(session=session, attempt=attempt, now=now, limits=limits)
        else:
            throttle.refund(session=session, attempt=attempt, now=now)
        status = 403 if exc.status == 401 else exc.status
        return render(request, "setup.html", {**values, "error": exc.detail}, status_code=status)
    throttle.refund(session=session, attempt=attempt, now=now)
    _start_login(request, session=session, rt=rt, membership=membership, now=now)
    flash(request, "Welcome to BlameTrail: your organization and owner account are ready.", "success")
    return redirect("/incidents")
