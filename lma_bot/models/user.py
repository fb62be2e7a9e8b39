from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Computed, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, TenantMixin, now_column, one_of

USER_ROLES = ("admin", "manager", "rep")


class User(TenantMixin, Base):
    """A member of an organization; in Slack, a workspace member (``slack_user_id``)."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("organization_id", "slack_user_id"),
        Index("uq_users_org_email", "organization_id", "email_normalized", unique=True),
        one_of("role", USER_ROLES),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        CheckConstraint("position('@' in email) > 1", name="email_shape"),
    )

    email: Mapped[str] = mapped_column(String(320), nullable=False)
    email_normalized: Mapped[str] = mapped_column(String(320), Computed("lower(email)", persisted=True))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False, server_default="rep")
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(50), nullable=False, server_default="UTC")
    preferences: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    last_seen_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
