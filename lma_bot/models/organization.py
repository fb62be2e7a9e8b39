from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Identity, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, now_column, one_of

SUBSCRIPTION_TIERS = ("free", "starter", "professional", "enterprise")


class Organization(Base):
    """The tenant. A Slack workspace maps to exactly one organization via ``slack_team_id``."""

    __tablename__ = "organizations"
    __table_args__ = (
        UniqueConstraint("slack_team_id"),
        one_of("subscription_tier", SUBSCRIPTION_TIERS),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    slack_team_id: Mapped[str | None] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", nullable=False, server_default=text("'{}'::jsonb")
    )
    subscription_tier: Mapped[str] = mapped_column(String(50), nullable=False, server_default="free")
    billing_email: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
