from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk

WEBHOOK_PROVIDERS = ("n8n", "sendgrid", "mailgun", "postmark")
WEBHOOK_EVENT_STATUSES = ("received", "processed", "ignored", "failed")


class WebhookEvent(BigTenantMixin, Base):
    """One delivery (one event of a batch) from n8n or an email provider, stored before it is answered.

    ``provider_event_id`` is unique per integration, so a redelivery is a no-op; ``nonce`` (Mailgun's token)
    is unique too, so a captured signature cannot be replayed with another body. A failed event keeps its
    payload and error and can be processed again (``lma-bot webhooks replay ID``).
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        tenant_fk("integration_id", "integrations"),
        UniqueConstraint("organization_id", "integration_id", "provider_event_id"),
        one_of("provider", WEBHOOK_PROVIDERS),
        one_of("status", WEBHOOK_EVENT_STATUSES),
        Index(
            "uq_webhook_events_nonce",
            "organization_id",
            "integration_id",
            "nonce",
            unique=True,
            postgresql_where=text("nonce IS NOT NULL"),
        ),
        Index(
            "idx_webhook_events_integration_received",
            "organization_id",
            "integration_id",
            text("received_at DESC"),
        ),
        Index(
            "idx_webhook_events_received",
            "organization_id",
            "id",
            postgresql_where=text("status = 'received'"),
        ),
        Index(
            "idx_webhook_events_failed",
            "organization_id",
            text("received_at DESC"),
            postgresql_where=text("status = 'failed'"),
        ),
    )

    integration_id: Mapped[int] = mapped_column(Integer, nullable=False)
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    provider_event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    nonce: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="received")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    received_at: Mapped[dt.datetime] = now_column()
    processed_at: Mapped[dt.datetime | None]
