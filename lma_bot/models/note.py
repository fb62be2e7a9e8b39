from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk, user_fk

NOTE_TYPES = ("general", "meeting", "call", "research", "reminder")


class LeadNote(BigTenantMixin, Base):
    """A note on a lead. ``mentioned_users`` holds ids of users of the same organization."""

    __tablename__ = "lead_notes"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        user_fk("user_id"),
        one_of("note_type", NOTE_TYPES),
        CheckConstraint("length(btrim(content)) > 0", name="content_not_blank"),
        Index("idx_lead_notes_lead_id", "lead_id"),
        Index("idx_lead_notes_user_id", "user_id"),
        Index("idx_lead_notes_type", "note_type"),
        Index("idx_lead_notes_created_at", "created_at"),
        Index("idx_lead_notes_mentioned_users", "mentioned_users", postgresql_using="gin"),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[int | None] = mapped_column(Integer)
    note_type: Mapped[str] = mapped_column(String(50), nullable=False, server_default="general")
    content: Mapped[str] = mapped_column(Text, nullable=False)
    is_private: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    mentioned_users: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), nullable=False, server_default=text("'{}'::integer[]")
    )
    attachments: Mapped[list[Any]] = mapped_column(nullable=False, server_default=text("'[]'::jsonb"))
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
