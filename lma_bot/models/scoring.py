from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, TenantMixin, now_column, one_of, tenant_fk, user_fk

RULE_TYPES = ("demographic", "behavioral", "engagement", "firmographic")
REPEAT_POLICIES = ("once_per_lead", "once_per_event", "at_most")
HISTORY_KINDS = ("rule", "manual", "decay")


class LeadScoringRule(TenantMixin, Base):
    __tablename__ = "lead_scoring_rules"
    __table_args__ = (
        user_fk("created_by"),
        one_of("rule_type", RULE_TYPES),
        one_of("repeat_policy", REPEAT_POLICIES),
        CheckConstraint("(repeat_policy = 'at_most') = (repeat_limit IS NOT NULL)", name="repeat_limit"),
        CheckConstraint("repeat_limit IS NULL OR repeat_limit >= 1", name="repeat_limit_positive"),
        Index("idx_scoring_rules_org_id", "organization_id"),
        Index("idx_scoring_rules_type", "rule_type"),
        Index("idx_scoring_rules_created_by", "created_by"),
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    rule_type: Mapped[str] = mapped_column(String(50), nullable=False)
    criteria: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    score_points: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    repeat_policy: Mapped[str] = mapped_column(String(20), nullable=False, server_default="once_per_lead")
    repeat_limit: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)


class LeadScoreHistory(BigTenantMixin, Base):
    """Every point change of a lead (one row per lead and scoring). ``score_change`` always equals
    ``new_score - previous_score``."""

    __tablename__ = "lead_score_history"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        tenant_fk("rule_id", "lead_scoring_rules", ondelete="SET NULL (rule_id)"),
        user_fk("changed_by"),
        CheckConstraint("score_change = new_score - previous_score", name="change_adds_up"),
        one_of("kind", HISTORY_KINDS),
        Index("idx_score_history_lead_id", "lead_id"),
        Index("idx_score_history_org_lead_id", "organization_id", "lead_id", "id"),
        Index(
            "idx_score_history_org_changed_by",
            "organization_id",
            "changed_by",
            postgresql_where=text("changed_by IS NOT NULL"),
        ),
        Index("idx_score_history_created_at", "created_at"),
        Index("idx_score_history_rule_id", "rule_id"),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    previous_score: Mapped[int] = mapped_column(Integer, nullable=False)
    new_score: Mapped[int] = mapped_column(Integer, nullable=False)
    score_change: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    rule_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, server_default="rule")
    #: the ``lead_events`` row that triggered a rule change (no foreign key: history outlives nothing)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    #: kind ``rule``: each moved rule's delta, ``{"<rule id>": delta}`` (they add up to ``score_change``);
    #: ``rule_id`` is set when exactly one rule moved
    rule_deltas: Mapped[dict[str, Any] | None] = mapped_column()
    changed_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()


class LeadEvent(BigTenantMixin, Base):
    """An engagement event of a lead that scoring rules count (email opened, note added, an n8n event...).

    ``dedupe_key`` is unique per organization: the same event delivered twice is stored, and scored, once.
    """

    __tablename__ = "lead_events"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        Index("uq_lead_events_org_dedupe_key", "organization_id", "dedupe_key", unique=True),
        Index("idx_lead_events_org_lead_occurred", "organization_id", "lead_id", "occurred_at"),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = now_column()
