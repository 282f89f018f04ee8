"""search index and incident fingerprints: search_doc, with FTS5 (SQLite) or a tsvector and GIN index (PostgreSQL); filled for existing rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:10:00
"""

import json

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# why: the same text structures as learning/index.py, written here against the columns as they are at this revision
SQLITE = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content='search_doc', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER search_doc_au AFTER UPDATE ON search_doc BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO search_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
]
POSTGRES = [
    "ALTER TABLE search_doc ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
    "(setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(body, '')), 'B')) STORED",
    "CREATE INDEX ix_search_doc_tsv ON search_doc USING gin (tsv)",
]
SECTION_TITLES = {
    "summary": "Summary", "customer_impact": "Customer impact", "timeline": "Timeline", "root_cause": "Root cause",
    "contributing_factors": "Contributing factors", "what_went_well": "What went well",
    "what_went_poorly": "What went poorly", "action_items": "Action items", "confidence": "Confidence",
}
MAX_BODY = 100_000


def upgrade() -> None:
    op.create_table('search_doc',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref_id', sa.Integer(), nullable=False),
    sa.Column('section', sa.String(length=64), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_search_doc_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_search_doc_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_doc')),
    sa.UniqueConstraint('kind', 'ref_id', 'section', name='uq_search_doc_ref')
    )
    with op.batch_alter_table('search_doc', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_doc_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_search_doc_org_kind', ['org_id', 'kind'], unique=False)
    op.create_table('incident_fingerprint',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name=op.f('fk_incident_fingerprint_incident_id_incident'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_incident_fingerprint_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_incident_fingerprint'))
    )
    with op.batch_alter_table('incident_fingerprint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_fingerprint_org_id'), ['org_id'], unique=False)
    bind = op.get_bind()
    for statement in (SQLITE if bind.dialect.name == "sqlite" else POSTGRES):
        op.execute(statement)
    _fill(bind)


def _fill(bind) -> None:
    doc = sa.table('search_doc', *(sa.column(c) for c in ('org_id', 'incident_id', 'kind', 'ref_id', 'section',
                                                           'title', 'body', 'at')))

    def rows(sql, make):
        out = []
        for r in bind.execute(sa.text(sql)):
            out += make(r)
            if len(out) >= 2000:
                bind.execute(doc.insert(), out)
                out = []
        if out:
            bind.execute(doc.insert(), out)

    def row(org_id, incident_id, kind, ref_id, section, title, body, at):
        return {"org_id": org_id, "incident_id": incident_id, "kind": kind, "ref_id": ref_id, "section": section,
                "title": (title or "")[:1000], "body": (body or "")[:MAX_BODY], "at": at}

    rows("SELECT id, org_id, title, description, started_at FROM incident",
         lambda r: [row(r.org_id, r.id, "incident", r.id, "", r.title, r.description, r.started_at)])
    rows("SELECT id, org_id, incident_id, author, body, at FROM timeline_entry WHERE kind = 'update'",
         lambda r: [row(r.org_id, r.incident_id, "update", r.id, "", r.author, r.body, r.at)] if (r.body or "").strip()
         else [])
    rows("SELECT id, org_id, incident_id, title, description, created_at FROM action_item",
         lambda r: [row(r.org_id, r.incident_id, "action_item", r.id, "", r.title, r.description, r.created_at)])
    rows("SELECT id, org_id, incident_id, sections, updated_at FROM postmortem WHERE sections IS NOT NULL",
         lambda r: [row(r.org_id, r.incident_id, "postmortem", r.id, key, title, text, r.updated_at)
                    for key, title, text in _sections(r.sections)])


def _sections(value):
    data = json.loads(value) if isinstance(value, str) else (value or {})
    for key, v in data.items():
        if key == "severity":
            continue
        if key == "extra":
            for k, t in (v or {}).items():
                if isinstance(t, str) and t.strip():
                    yield f"extra:{k}", k.replace("_", " ").capitalize(), t
            continue
        if isinstance(v, str):
            text = v
        elif isinstance(v, dict):
            text = " ".join([str(v.get("description") or v.get("reason") or "")]
                            + [str(s) for s in v.get("affected_services") or []])
        elif isinstance(v, list):
            text = "\n".join(i if isinstance(i, str) else " ".join(str(i.get(f) or "") for f in
                                                                   ("title", "description", "suggested_owner")
                                                                   if i.get(f))
                             for i in v if isinstance(i, (str, dict)))
        else:
            text = ""
        if text.strip():
            yield key, SECTION_TITLES.get(key, key), text


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("search_doc_ai", "search_doc_ad", "search_doc_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table('search_doc')
    op.drop_table('incident_fingerprint')
