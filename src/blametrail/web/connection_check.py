"""The connection test as a request runs it: commit first, talk to the backend, then record the outcome."""

from __future__ import annotations

from sqlalchemy.orm import Session

from blametrail import db
from blametrail.errors import UpstreamError
from blametrail.integrations import service as connections
from blametrail.integrations.base import Limits, connector_for
from blametrail.orgs.permissions import Action, require
from blametrail.orgs.service import Actor


def run_connection_test(*, connection_id: int, actor: Actor, session: Session, rt) -> dict:
    """Test a connection (owner/admin) outside any transaction; return {"ok", "message", "error"}."""
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    require(actor.role, Action.MANAGE)
    try:
        connector = connector_for(connection, rt.secret_box, Limits.from_settings(rt.settings))
    except UpstreamError as exc:
        outcome = connections.TestOutcome(ok=False, error=str(exc))
    else:
        # why: end the transaction before talking to the outside world, so a slow backend never holds
        # SQLite's write lock or an idle PostgreSQL transaction for the length of its timeout
        db.commit(session)
        outcome = connections.run_test(connector)
    connection = connections.get_or_404(session=session, org_id=actor.org_id, connection_id=connection_id)
    connections.record_test(session=session, connection=connection, outcome=outcome, now=rt.clock.now())
    return {"ok": outcome.ok, "message": outcome.message, "error": outcome.error}
