from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, TenantMixin, now_column


class SlackInstallation(TenantMixin, Base):
    """The bot's installation in a workspace (multi-workspace OAuth mode). Tokens only as Fernet tokens."""

    __tablename__ = "slack_installations"
    __table_args__ = (
        UniqueConstraint("organization_id", "team_id"),
        Index("idx_slack_installations_team_id", "team_id"),
    )

    team_id: Mapped[str] = mapped_column(String(32), nullable=False)
    team_name: Mapped[str | None] = mapped_column(String(255))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    app_id: Mapped[str | None] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(Text)
    bot_token_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    installer_user_id: Mapped[str | None] = mapped_column(String(32))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    installed_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
