from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk, user_fk

#: scheduled -> sending (the send intent is recorded) -> sent; failed and cancelled are terminal.
REMINDER_STATUSES = ("scheduled", "sending", "sent", "failed", "cancelled")


class Reminder(BigTenantMixin, Base):
    """A follow-up reminder about a lead, delivered as a Slack DM at ``due_at``.

    PostgreSQL is the truth; the ``{scheduled_communications}`` sorted set in Redis only orders the due ids
    and is rebuilt from here. ``send_key`` is written (status ``sending``) before the Slack call and travels
    in the message's metadata, so a process that recovers a half-finished send can tell whether it happened.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        user_fk("user_id"),
        user_fk("created_by"),
        one_of("status", REMINDER_STATUSES),
        Index("idx_reminders_org_status_due", "organization_id", "status", "due_at"),
        Index(
            "idx_reminders_org_user_due",
            "organization_id",
            "user_id",
            "due_at",
            postgresql_where=text("status IN ('scheduled', 'sending')"),
        ),
        Index("idx_reminders_org_lead", "organization_id", "lead_id", "due_at"),
        Index("idx_reminders_org_created_by", "organization_id", "created_by"),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int | None] = mapped_column(Integer)  # who is reminded
    created_by: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    # False when the user named only a day: quiet hours may then delay it, never an explicit time
    explicit_time: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    send_key: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sending_since: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    done_at: Mapped[dt.datetime | None]  # the recipient pressed Done
    slack_channel: Mapped[str | None] = mapped_column(String(50))
    slack_ts: Mapped[str | None] = mapped_column(String(50))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
