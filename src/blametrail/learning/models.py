"""The search index's documents: one row per searchable text (an incident, a person's update, a postmortem section,
an action item), written in the same transaction as the record (learning/index.py).

The full-text structures beside it are per database and made by migration 0011: on SQLite an FTS5 table
`search_fts` (external content = this table, kept in step by triggers), on PostgreSQL a generated `tsv` tsvector
column with a GIN index. Neither is mapped here; learning/search.py queries them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blametrail.db import Base

KINDS = ("incident", "update", "postmortem", "action_item")


def mapped_in_models(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: leave out the full-text structures migration 0011 makes by hand (FTS5's tables,
    the generated tsvector column) when models and database are compared."""
    if (type_ == "table" and (name or "").startswith("search_fts")) or (type_ == "index" and name == "ix_search_doc_tsv"):
        return False
    return not (type_ == "column" and name == "tsv" and getattr(getattr(obj, "table", None), "name", "")
                == "search_doc")


class SearchDoc(Base):
    __tablename__ = "search_doc"
    __table_args__ = (UniqueConstraint("kind", "ref_id", "section", name="uq_search_doc_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # incident | update | postmortem | action_item
    ref_id: Mapped[int]  # the record's id (the incident, timeline entry, postmortem or action item)
    section: Mapped[str] = mapped_column(String(64), default="")  # a postmortem's section key; "" otherwise
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


Index("ix_search_doc_org_kind", SearchDoc.org_id, SearchDoc.kind)


class IncidentFingerprint(Base):
    """What makes an incident recur (analysis/similarity.py), stored when its draft's evidence was analysed."""

    __tablename__ = "incident_fingerprint"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict]
    updated_at: Mapped[datetime]
