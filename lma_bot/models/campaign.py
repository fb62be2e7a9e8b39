from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Date, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, TenantMixin, now_column, one_of, tenant_fk, user_fk

CAMPAIGN_TYPES = ("email", "cold_outreach", "content", "social", "event")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "completed", "cancelled")
CAMPAIGN_LEAD_STATUSES = ("pending", "contacted", "responded", "converted", "excluded")


class Campaign(TenantMixin, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        user_fk("created_by"),
        one_of("campaign_type", CAMPAIGN_TYPES),
        one_of("status", CAMPAIGN_STATUSES),
        CheckConstraint(
            "budget_allocated IS NULL OR budget_allocated >= 0", name="budget_allocated_positive"
        ),
        CheckConstraint("budget_spent >= 0", name="budget_spent_positive"),
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="dates_ordered"
        ),
        Index("idx_campaigns_organization_id", "organization_id"),
        Index("idx_campaigns_status", "status"),
        Index("idx_campaigns_type", "campaign_type"),
        Index("idx_campaigns_created_by", "created_by"),
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    campaign_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50), nullable=False, server_default="draft")
    target_criteria: Mapped[dict[str, Any]] = mapped_column(
        nullable=False, server_default=text("'{}'::jsonb")
    )
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    budget_allocated: Mapped[int | None] = mapped_column(Integer)
    budget_spent: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    goals: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)


class CampaignLead(TenantMixin, Base):
    __tablename__ = "campaign_leads"
    __table_args__ = (
        tenant_fk("campaign_id", "campaigns"),
        tenant_fk("lead_id", "leads"),
        UniqueConstraint("organization_id", "campaign_id", "lead_id"),
        one_of("status", CAMPAIGN_LEAD_STATUSES),
        Index("idx_campaign_leads_campaign_id", "campaign_id"),
        Index("idx_campaign_leads_lead_id", "lead_id"),
        Index("idx_campaign_leads_status", "status"),
        Index("idx_campaign_leads_campaign_status", "campaign_id", "status"),
    )

    campaign_id: Mapped[int] = mapped_column(Integer, nullable=False)
    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(50), nullable=False, server_default="pending")
    added_at: Mapped[dt.datetime] = now_column()
    last_contact_at: Mapped[dt.datetime | None]
    response_at: Mapped[dt.datetime | None]
    conversion_at: Mapped[dt.datetime | None]
