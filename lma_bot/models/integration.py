from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, TenantMixin, now_column, one_of, user_fk

INTEGRATION_TYPES = ("crm", "email_provider", "automation", "social", "calendar", "messaging")
INTEGRATION_STATUSES = ("active", "inactive", "error", "expired")


class Integration(TenantMixin, Base):
    """An outside system an organization connects. Secrets live only in ``encrypted_secrets`` (Fernet).

    ``configuration`` holds non-secret settings, validated against a JSON Schema per provider. The webhook
    key is stored as its SHA-256 (``webhook_key_hash``); the key itself is shown once, at creation.
    """

    __tablename__ = "integrations"
    __table_args__ = (
        user_fk("created_by"),
        UniqueConstraint("organization_id", "webhook_key_hash"),
        one_of("integration_type", INTEGRATION_TYPES),
        one_of("status", INTEGRATION_STATUSES),
        CheckConstraint("sync_frequency_minutes > 0", name="sync_frequency_positive"),
        Index("idx_integrations_organization_id", "organization_id"),
        Index("idx_integrations_type", "integration_type"),
        Index("idx_integrations_status", "status"),
        Index("idx_integrations_webhook_key_hash", "webhook_key_hash"),
        Index("idx_integrations_created_by", "created_by"),
    )

    integration_type: Mapped[str] = mapped_column(String(100), nullable=False)
    provider_name: Mapped[str] = mapped_column(String(100), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(255))
    configuration: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    encrypted_secrets: Mapped[str | None] = mapped_column(Text)
    webhook_key_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(50), nullable=False, server_default="active")
    last_sync_at: Mapped[dt.datetime | None]
    sync_frequency_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    error_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
