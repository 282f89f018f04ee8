"""Secret-key rotation: re-encrypt every stored secret with the first key of BLAMETRAIL_SECRET_KEY, so others can go."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from blametrail.ai.models import AIConfig
from blametrail.crypto import SecretBox
from blametrail.integrations.models import Connection
from blametrail.orgs.models import IdempotencyRecord
from blametrail.outbound.models import OutboundEndpoint
from blametrail.vendors.models import VendorIntegration
from blametrail.webhooks.models import Webhook

BATCH = 500


@dataclass(frozen=True)
class Sealed:
    """A column of Fernet ciphertexts: text, or the ciphertext's ASCII bytes (`binary`)."""

    column: InstrumentedAttribute
    binary: bool = False

    @property
    def name(self) -> str:
        return f"{self.column.class_.__tablename__}.{self.column.key}"


# Every column holding ciphertext (tests/test_keys.py fails on an `*_encrypted` column missing here).
ENCRYPTED = (
    Sealed(Webhook.secret_encrypted),
    Sealed(AIConfig.api_key_encrypted),
    Sealed(Connection.credentials_encrypted),
    Sealed(IdempotencyRecord.response_body, binary=True),  # replayable responses (orgs/idempotency.seal_body)
    Sealed(VendorIntegration.secrets_encrypted),
    Sealed(OutboundEndpoint.secret_encrypted),
)


@dataclass
class Counts:
    rotated: int = 0
    current: int = 0  # the first key opens it already
    unreadable: int = 0  # no listed key opens it: the key that sealed it is gone


def rotate_all(*, session: Session, box: SecretBox) -> dict[str, Counts]:
    """Re-encrypt with the first key every stored secret another key sealed; return counts per table column."""
    return {sealed.name: _rotate(session, box, sealed) for sealed in ENCRYPTED}


def _rotate(session: Session, box: SecretBox, sealed: Sealed) -> Counts:
    model, column, counts, after = sealed.column.class_, sealed.column, Counts(), 0
    while True:
        rows = session.execute(select(model.id, column).where(column.is_not(None), model.id > after)
                               .order_by(model.id).limit(BATCH)).all()
        if not rows:
            return counts
        for row_id, stored in rows:
            try:
                ciphertext = stored.decode("ascii") if sealed.binary else stored
                if box.is_current(ciphertext):
                    counts.current += 1
                    continue
                fresh = box.rotate(ciphertext)
            except (ValueError, UnicodeDecodeError):
                counts.unreadable += 1
                continue
            # why the stored value in WHERE: a secret replaced meanwhile (already under the first key) is left alone
            session.execute(update(model).where(model.id == row_id, column == stored)
                            .values({column.key: fresh.encode("ascii") if sealed.binary else fresh})
                            .execution_options(synchronize_session=False))
            counts.rotated += 1
        after = rows[-1][0]
