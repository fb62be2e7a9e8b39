from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    FetchedValue,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, TenantMixin, now_column, one_of, tenant_fk, user_fk

LEAD_STATUSES = (
    "new",
    "contacted",
    "qualified",
    "unqualified",
    "proposal",
    "negotiation",
    "won",
    "lost",
)
LEAD_TEMPERATURES = ("cold", "warm", "hot")
EMAIL_STATUSES = ("unknown", "valid", "invalid")


class Lead(TenantMixin, Base):
    """A prospective customer. Unique per organization on ``lower(email)`` among live (not deleted) leads."""

    __tablename__ = "leads"
    __table_args__ = (
        user_fk("assigned_to_id"),
        user_fk("created_by"),
        one_of("status", LEAD_STATUSES),
        one_of("lead_temperature", LEAD_TEMPERATURES),
        one_of("email_status", EMAIL_STATUSES),
        CheckConstraint("email IS NULL OR position('@' in email) > 1", name="email_shape"),
        CheckConstraint(
            "email IS NOT NULL OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL",
            name="identifiable",
        ),
        Index(
            "uq_leads_org_email",
            "organization_id",
            "email_normalized",
            unique=True,
            postgresql_where=text("email_normalized IS NOT NULL AND deleted_at IS NULL"),
        ),
        Index("idx_leads_org_status_score", "organization_id", "status", text("score DESC")),
        Index(
            "idx_leads_assigned_status",
            "assigned_to_id",
            "status",
            postgresql_where=text("assigned_to_id IS NOT NULL"),
        ),
        Index("idx_leads_org_created_at", "organization_id", text("created_at DESC")),
        Index("idx_leads_created_by", "created_by"),
        Index("idx_leads_tags", "tags", postgresql_using="gin"),
        Index("idx_leads_search", "search_vector", postgresql_using="gin"),
        Index(
            "idx_leads_org_owner_created",
            "organization_id",
            "assigned_to_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "idx_leads_org_unassigned_created",
            "organization_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("assigned_to_id IS NULL AND deleted_at IS NULL"),
        ),
        Index(
            "idx_leads_org_status_created",
            "organization_id",
            "status",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "idx_leads_org_temperature_created",
            "organization_id",
            "lead_temperature",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("idx_leads_custom_fields", "custom_fields", postgresql_using="gin"),
    )

    email: Mapped[str | None] = mapped_column(String(320))
    # lower(email), stored: lookups compare it with `=` (leakproof), so the unique index serves them under
    # row-level security, where an index on the expression lower(email) could not be used.
    email_normalized: Mapped[str | None] = mapped_column(
        String(320), Computed("lower(email)", persisted=True)
    )
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))
    company: Mapped[str | None] = mapped_column(String(255))
    job_title: Mapped[str | None] = mapped_column(String(255))
    website: Mapped[str | None] = mapped_column(String(500))
    linkedin_url: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30), nullable=False, server_default="new")
    score: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lead_temperature: Mapped[str] = mapped_column(String(20), nullable=False, server_default="cold")
    assigned_to_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, server_default=text("'{}'::varchar[]")
    )
    custom_fields: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    expected_close_date: Mapped[dt.date | None] = mapped_column(Date)
    last_engagement_date: Mapped[dt.datetime | None]
    last_contacted_at: Mapped[dt.datetime | None]
    email_status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="unknown")
    do_not_contact: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    #: set while a manager has locked the score: rules and decay leave it alone until unlocked
    score_locked_at: Mapped[dt.datetime | None]
    #: when decay last took points (decay counts its periods from the later of this and the last engagement)
    score_decayed_at: Mapped[dt.datetime | None]
    #: what each scoring rule gives the lead now: ``{"<rule id>": [points, firings, last fired (epoch s)]}``
    #: (only rules with points or firings); kept by :mod:`lma_bot.scoring`, not loaded unless asked for
    rule_points: Mapped[dict[str, Any]] = mapped_column(
        nullable=False, server_default=text("'{}'::jsonb"), deferred=True
    )
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
    deleted_at: Mapped[dt.datetime | None]
    # Full-text search over name, company and email (split on punctuation so "acme" finds ann@acme.com);
    # the 'simple' configuration keeps names as typed (no stemming). Used by `/lead find` with prefix match.
    # Computed by the ``leads_search_vector`` trigger (migration 0016) when a row is inserted or one of
    # those columns is written: unlike a stored generated column, not on every update (a score change).
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR,
        nullable=False,
        server_default=FetchedValue(),
        server_onupdate=FetchedValue(),
        deferred=True,
    )

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return full or self.email or self.company or f"Lead {self.id}"


class LeadSearchTerm(Base):
    """One word of a live lead's name, company or email (a lexeme of ``leads.search_vector``).

    Kept by the ``leads_lookup_sync`` trigger. `/lead find` matches a prefix as ``term >= p AND term < p'``:
    text comparisons are leakproof, so under row-level security the range is an index condition on
    ``(organization_id, term)``, where the tsvector ``@@`` operator could only ever be a filter. The column is
    collated "C" so that a range of code points is exactly the set of words starting with the prefix.
    """

    __tablename__ = "lead_search_terms"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        Index("idx_lead_search_terms_org_term", "organization_id", "term", "lead_id"),
    )

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)


class LeadTag(Base):
    """One tag of a live lead, with the lead's ``created_at`` (kept by the ``leads_lookup_sync`` trigger).

    `/lead list tag:<t>` reads ``(organization_id, tag, created_at DESC, lead_id DESC)`` in order: a page costs
    a page of index entries whatever the tag's frequency (array ``@>`` is not leakproof, so the GIN index on
    ``leads.tags`` cannot serve the runtime role under row-level security).
    """

    __tablename__ = "lead_tags"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        Index(
            "idx_lead_tags_org_tag_created",
            "organization_id",
            "tag",
            text("created_at DESC"),
            text("lead_id DESC"),
        ),
    )

    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
