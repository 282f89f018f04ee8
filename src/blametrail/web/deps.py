"""Request dependencies: runtime, one transaction per request (commit at the edge), the acting user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import Unauthenticated
from blametrail.orgs import service as orgs
from blametrail.orgs.service import Actor
from blametrail.runtime import Runtime
from blametrail.web import idempotency
from blametrail.web.dbgate import db_gate
from blametrail.web.pages.common import refused_post_login

SESSION_KEY = "sid"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def db_slot(request: Request) -> AsyncIterator[None]:
    """Wait on the event loop (holding no thread) until the request may open a database session."""
    async with db_gate(request.app):
        yield


def get_session(request: Request, _slot: Annotated[None, Depends(db_slot, scope="function")]) -> Iterator[Session]:
    """Yield a session; commit (then enqueue deferred jobs) if the handler succeeded, else roll back."""
    session = request.app.state.runtime.factory()
    try:
        yield session
        db.commit(session)
    except BaseException:
        db.rollback(session)
        raise
    finally:
        session.close()


def get_now(request: Request) -> datetime:
    return request.app.state.runtime.clock.now()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
NowDep = Annotated[datetime, Depends(get_now)]


def api_actor(request: Request, session: SessionDep, now: NowDep) -> Actor:
    """Authenticate the bearer token; take the request's Idempotency-Key, if any, in the same transaction."""
    header = request.headers.get("authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    actor = orgs.authenticate_token(session=session, raw=raw.strip(), now=now)
    # why: every API route passes here, so no POST route can forget the key; a retry is answered with the actor's
    # current role (re-read from the membership just above), never the role of the original request
    idempotency.reserve_for_route(request, session=session, actor=actor, now=now)
    return actor


def page_actor_or_none(request: Request, session: SessionDep, now: NowDep) -> Actor | None:
    """Return the logged-in user of a page request, or None."""
    raw = request.session.get(SESSION_KEY)
    if not raw:
        return None
    actor = orgs.session_actor(session=session, raw=raw, now=now)
    if actor is not None:  # why: the header's organization switcher lists them on every page
        request.state.memberships = [(m.org_id, m.org.name) for m in
                                     orgs.memberships_of(session=session, user_id=actor.user_id)]
    return actor


async def page_actor(request: Request, actor: Annotated[Actor | None, Depends(page_actor_or_none)]) -> Actor:
    """Require a logged-in user. Pages redirect to /login otherwise; a form POST refused this way (an expired
    session) is answered with the login page itself, which keeps what was typed (web/pages/common.py)."""
    if actor is None:
        if request.method == "POST":
            # why: web/errors.py answers the 401 with this page instead of a redirect to the POST's URL (a 405)
            request.state.login_page = await refused_post_login(request)
        raise Unauthenticated("Log in to continue.")
    return actor


ApiActor = Annotated[Actor, Depends(api_actor)]
PageActor = Annotated[Actor, Depends(page_actor)]
MaybePageActor = Annotated[Actor | None, Depends(page_actor_or_none)]
