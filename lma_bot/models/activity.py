from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk, user_fk

ENTITY_TYPES = (
    "organization",
    "user",
    "lead",
    "note",
    "assignment",
    "scoring_rule",
    "communication",
    "workflow",
    "workflow_execution",
    "campaign",
    "integration",
    "reminder",
)


class ActivityLog(BigTenantMixin, Base):
    """Audit trail: who did what to which entity, with the before/after of what changed."""

    __tablename__ = "activity_logs"
    __table_args__ = (
        user_fk("user_id"),
        tenant_fk("lead_id", "leads"),
        one_of("entity_type", ENTITY_TYPES),
        Index(
            "idx_activity_logs_lead_type_date",
            "lead_id",
            "activity_type",
            text("created_at DESC"),
        ),
        Index("idx_activity_logs_user_id", "user_id"),
        Index("idx_activity_logs_org_created_at", "organization_id", text("created_at DESC")),
    )

    user_id: Mapped[int | None] = mapped_column(Integer)
    lead_id: Mapped[int | None] = mapped_column(Integer)
    activity_type: Mapped[str] = mapped_column(String(100), nullable=False)
    entity_type: Mapped[str | None] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[dt.datetime] = now_column()
