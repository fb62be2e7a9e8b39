from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk, user_fk

COMMUNICATION_TYPES = ("email", "call", "meeting", "linkedin", "sms")
DIRECTIONS = ("inbound", "outbound")
COMMUNICATION_STATUSES = ("scheduled", "completed", "failed", "cancelled")
#: Where an email is, as its provider reports it. bounced, complained and failed are terminal.
DELIVERY_STATUSES = (
    "queued",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "complained",
    "failed",
)


class Communication(BigTenantMixin, Base):
    __tablename__ = "communications"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        user_fk("user_id"),
        one_of("communication_type", COMMUNICATION_TYPES),
        one_of("direction", DIRECTIONS),
        one_of("status", COMMUNICATION_STATUSES),
        one_of("delivery_status", DELIVERY_STATUSES),
        Index(
            "uq_communications_org_message_id",
            "organization_id",
            "message_id",
            unique=True,
            postgresql_where=text("message_id IS NOT NULL"),
        ),
        Index("idx_communications_lead_id", "lead_id"),
        Index("idx_communications_user_id", "user_id"),
        Index("idx_communications_type", "communication_type"),
        Index("idx_communications_scheduled_at", "scheduled_at"),
        Index(
            "idx_communications_lead_type_date",
            "lead_id",
            "communication_type",
            text("completed_at DESC"),
        ),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int | None] = mapped_column(Integer)
    communication_type: Mapped[str] = mapped_column(String(50), nullable=False)
    direction: Mapped[str] = mapped_column(String(20), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(50), nullable=False, server_default="completed")
    scheduled_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    # The Message-ID we set on an outbound email; provider events find their communication by it.
    message_id: Mapped[str | None] = mapped_column(String(255))
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
