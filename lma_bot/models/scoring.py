from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, TenantMixin, now_column, one_of, tenant_fk, user_fk

RULE_TYPES = ("demographic", "behavioral", "engagement", "firmographic")


class LeadScoringRule(TenantMixin, Base):
    __tablename__ = "lead_scoring_rules"
    __table_args__ = (
        user_fk("created_by"),
        one_of("rule_type", RULE_TYPES),
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
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)


class LeadScoreHistory(BigTenantMixin, Base):
    """Every point change of a lead. ``score_change`` always equals ``new_score - previous_score``."""

    __tablename__ = "lead_score_history"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        tenant_fk("rule_id", "lead_scoring_rules", ondelete="SET NULL (rule_id)"),
        CheckConstraint("score_change = new_score - previous_score", name="change_adds_up"),
        Index("idx_score_history_lead_id", "lead_id"),
        Index("idx_score_history_created_at", "created_at"),
        Index("idx_score_history_rule_id", "rule_id"),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    previous_score: Mapped[int] = mapped_column(Integer, nullable=False)
    new_score: Mapped[int] = mapped_column(Integer, nullable=False)
    score_change: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    rule_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
