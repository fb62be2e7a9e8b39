"""Lead lookup tables for `/lead find` and `/lead list tag:` that stay index-backed under row-level security.

Below an RLS policy PostgreSQL only uses a condition as an index condition when its operator is leakproof.
The tsvector ``@@`` and array ``@>`` operators are not, so for the runtime role the GIN indexes on
``leads.search_vector`` and ``leads.tags`` could never serve a query: every `find` and `tag:` read the
organization's leads one by one. These side tables hold one row per word and per tag of each live lead,
are queried with plain ``=``/``>=``/``<`` on text (leakproof), and are kept in step by one trigger that runs
as the invoking role, so the tables' own policies check its writes.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"
TABLES = ("lead_search_terms", "lead_tags")

SYNC_FUNCTION = """
CREATE FUNCTION lead_lookup_sync() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.search_vector IS DISTINCT FROM OLD.search_vector
           OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
            DELETE FROM lead_search_terms WHERE organization_id = OLD.organization_id AND lead_id = OLD.id;
            IF NEW.deleted_at IS NULL THEN
                INSERT INTO lead_search_terms (organization_id, lead_id, term)
                SELECT NEW.organization_id, NEW.id, u.lexeme FROM unnest(NEW.search_vector) AS u;
            END IF;
        END IF;
        IF NEW.tags IS DISTINCT FROM OLD.tags OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
            DELETE FROM lead_tags WHERE organization_id = OLD.organization_id AND lead_id = OLD.id;
            IF NEW.deleted_at IS NULL THEN
                INSERT INTO lead_tags (organization_id, lead_id, tag, created_at)
                SELECT DISTINCT NEW.organization_id, NEW.id, t, NEW.created_at FROM unnest(NEW.tags) AS t;
            END IF;
        END IF;
    ELSIF NEW.deleted_at IS NULL THEN
        INSERT INTO lead_search_terms (organization_id, lead_id, term)
        SELECT NEW.organization_id, NEW.id, u.lexeme FROM unnest(NEW.search_vector) AS u;
        INSERT INTO lead_tags (organization_id, lead_id, tag, created_at)
        SELECT DISTINCT NEW.organization_id, NEW.id, t, NEW.created_at FROM unnest(NEW.tags) AS t;
    END IF;
    RETURN NULL;
END
$$
"""

BACKFILL = (
    "INSERT INTO lead_search_terms (organization_id, lead_id, term) "
    "SELECT l.organization_id, l.id, u.lexeme FROM leads AS l, unnest(l.search_vector) AS u "
    "WHERE l.deleted_at IS NULL",
    "INSERT INTO lead_tags (organization_id, lead_id, tag, created_at) "
    "SELECT DISTINCT l.organization_id, l.id, t, l.created_at FROM leads AS l, unnest(l.tags) AS t "
    "WHERE l.deleted_at IS NULL",
)


def upgrade() -> None:
    op.create_table(
        "lead_search_terms",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.Text(collation="C"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_search_terms_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "lead_id", "term", name=op.f("pk_lead_search_terms")),
    )
    op.create_index(
        "idx_lead_search_terms_org_term", "lead_search_terms", ["organization_id", "term", "lead_id"]
    )
    op.create_table(
        "lead_tags",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_tags_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "lead_id", "tag", name=op.f("pk_lead_tags")),
    )
    op.create_index(
        "idx_lead_tags_org_tag_created",
        "lead_tags",
        ["organization_id", "tag", sa.literal_column("created_at DESC"), sa.literal_column("lead_id DESC")],
    )
    # Backfill before the new tables' policies exist, with the owner briefly not subject to the leads policy
    # (it is forced; inside this migration's transaction, so no one else ever sees it lifted).
    op.execute("ALTER TABLE leads NO FORCE ROW LEVEL SECURITY")
    for statement in BACKFILL:
        op.execute(statement)
    op.execute("ALTER TABLE leads FORCE ROW LEVEL SECURITY")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_organization_isolation ON {table} "
            f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
    op.execute(SYNC_FUNCTION)
    op.execute(
        "CREATE TRIGGER leads_lookup_sync "
        "AFTER INSERT OR UPDATE OF first_name, last_name, company, email, tags, created_at, deleted_at "
        "ON leads FOR EACH ROW EXECUTE FUNCTION lead_lookup_sync()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER leads_lookup_sync ON leads")
    op.execute("DROP FUNCTION lead_lookup_sync()")
    op.drop_index("idx_lead_tags_org_tag_created", table_name="lead_tags")
    op.drop_table("lead_tags")
    op.drop_index("idx_lead_search_terms_org_term", table_name="lead_search_terms")
    op.drop_table("lead_search_terms")
