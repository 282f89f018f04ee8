"""Login, logout and the first-run setup page."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from blametrail import db
from blametrail.errors import DomainError, Unauthenticated
from blametrail.orgs import service as orgs
from blametrail.orgs.models import Membership
from blametrail.web.deps import SESSION_KEY, MaybePageActor, NowDep, RuntimeDep, SessionDep
from blametrail.web.pages.common import FormDep, field, flash, redirect, render, safe_next

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


@router.post("/login")
def login(request: Request, form: FormDep, session: SessionDep, rt: RuntimeDep, now: NowDep):
    email, password, next_url = field(form, "email"), form.get("password") or "", field(form, "next")
    try:
        memberships = orgs.check_login(session=session, email=email, password=str(password))
    except Unauthenticated as exc:
        return render(request, "login.html", {"next": next_url, "email": email, "error": exc.detail},
                      status_code=400)
    _start_login(request, session=session, rt=rt, membership=memberships[0], now=now)
    return redirect(safe_next(next_url))


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
    try:
        membership = orgs.complete_setup(
            session=session, token=values["token"], org_slug=slug, org_name=values["org_name"] or slug,
            email=values["email"], password=str(form.get("password") or ""), now=now)
    except DomainError as exc:
        db.rollback(session)  # why: setup may have created the organization before failing on the owner
        status = 403 if exc.status == 401 else exc.status
        return render(request, "setup.html", {**values, "error": exc.detail}, status_code=status)
    _start_login(request, session=session, rt=rt, membership=membership, now=now)
    flash(request, "Welcome to BlameTrail: your organization and owner account are ready.", "success")
    return redirect("/incidents")
