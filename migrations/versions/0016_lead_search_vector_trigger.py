"""``leads.search_vector`` kept by a trigger instead of a stored generated column: the generated column was
recomputed (``to_tsvector`` and a regular expression over name, company and email) on *every* update of a
lead, whatever changed, which was about a third of the cost of writing a lead's score (a rescore writes
every lead). The ``BEFORE`` trigger recomputes it only when an insert or an update names one of the columns it
is made of; the value, the GIN index ``idx_leads_search`` and the ``leads_lookup_sync`` trigger (which
compares ``NEW.search_vector`` with ``OLD.search_vector``) are unchanged. Setting ``search_vector`` directly
has no effect: the trigger computes it from the row, like the generated column did.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the generated column's expression (0006), over ``NEW``
SEARCH_VECTOR = (
    "to_tsvector('simple'::regconfig, coalesce(NEW.first_name, '') || ' ' || coalesce(NEW.last_name, '') || ' ' "
    "|| coalesce(NEW.company, '') || ' ' || coalesce(NEW.email, '') || ' ' "
    "|| coalesce(regexp_replace(NEW.email, '[@._+-]+', ' ', 'g'), ''))"
)
GENERATED = (
    "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(company, '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(regexp_replace(email, '[@._+-]+', ' ', 'g'), ''))"
)


def upgrade() -> None:
    # keeps every row's value and the index; from now on the column is written only by the trigger
    op.execute("ALTER TABLE leads ALTER COLUMN search_vector DROP EXPRESSION")
    op.execute(
        f"""
CREATE FUNCTION lead_search_vector() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    NEW.search_vector := {SEARCH_VECTOR};
    RETURN NEW;
END
$$
"""
    )
    op.execute(
        "CREATE TRIGGER leads_search_vector "
        "BEFORE INSERT OR UPDATE OF first_name, last_name, company, email, search_vector "
        "ON leads FOR EACH ROW EXECUTE FUNCTION lead_search_vector()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER leads_search_vector ON leads")
    op.execute("DROP FUNCTION lead_search_vector()")
    # a column cannot become generated in place (PostgreSQL 15): recreate it, then its index; the values
    # are the same, so the lookup tables stay as they are
    op.execute("DROP INDEX idx_leads_search")
    op.execute("ALTER TABLE leads DROP COLUMN search_vector")
    op.execute(
        f"ALTER TABLE leads ADD COLUMN search_vector tsvector NOT NULL GENERATED ALWAYS AS ({GENERATED}) STORED"
    )
    op.execute("CREATE INDEX idx_leads_search ON leads USING gin (search_vector)")
