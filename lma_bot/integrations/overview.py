"""What admins see of their integrations: each one's webhook route (never its key or secrets), its recent
deliveries by outcome, and its latest failures (from ``webhook_events``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.integrations.service import PROVIDERS
from lma_bot.models import Integration, WebhookEvent

WINDOW = dt.timedelta(days=1)
FAILURES = 3


@dataclass(frozen=True)
class FailureView:
    event_id: int
    event_type: str
    received_at: dt.datetime
    error: str | None


@dataclass(frozen=True)
class IntegrationOverview:
    id: int
    provider: str
    display_name: str
    status: str
    webhook_route: str  # "https://host/webhooks/n8n/…": the key was shown once, at creation
    allow_private_targets: bool
    last_delivery_at: dt.datetime | None
    counts: dict[str, int] = field(default_factory=dict)  # status -> deliveries in the window
    failures: list[FailureView] = field(default_factory=list)


async def overview(session: AsyncSession, *, org_id: int, public_url: str) -> list[IntegrationOverview]:
    integrations = list(
        (
            await session.execute(
                select(Integration).where(Integration.organization_id == org_id).order_by(Integration.id)
            )
        ).scalars()
    )
    since = func.now() - WINDOW
    counts: dict[int, dict[str, int]] = {}
    for integration_id, status, count in (
        await session.execute(
            select(WebhookEvent.integration_id, WebhookEvent.status, func.count())
            .where(WebhookEvent.organization_id == org_id, WebhookEvent.received_at >= since)
            .group_by(WebhookEvent.integration_id, WebhookEvent.status)
        )
    ).tuples():
        counts.setdefault(integration_id, {})[status] = int(count)
    last: dict[int, dt.datetime] = {
        integration_id: when
        for integration_id, when in (
            await session.execute(
                select(WebhookEvent.integration_id, func.max(WebhookEvent.received_at))
                .where(WebhookEvent.organization_id == org_id)
                .group_by(WebhookEvent.integration_id)
            )
        ).tuples()
    }
    ranked = (
        select(
            WebhookEvent.id,
            WebhookEvent.integration_id,
            WebhookEvent.event_type,
            WebhookEvent.received_at,
            WebhookEvent.error,
            func.row_number()
            .over(partition_by=WebhookEvent.integration_id, order_by=WebhookEvent.received_at.desc())
            .label("rank"),
        )
        .where(WebhookEvent.organization_id == org_id, WebhookEvent.status == "failed")
        .subquery()
    )
    failures: dict[int, list[FailureView]] = {}
    for row in await session.execute(
        select(ranked).where(ranked.c.rank <= FAILURES).order_by(ranked.c.integration_id, ranked.c.rank)
    ):
        failures.setdefault(row.integration_id, []).append(
            FailureView(
                event_id=row.id, event_type=row.event_type, received_at=row.received_at, error=row.error
            )
        )
    base = public_url.rstrip("/")
    result = []
    for integration in integrations:
        spec = PROVIDERS.get(integration.provider_name)
        route = f"{base}/webhooks/{spec.route}/…" if spec and spec.route else "(no webhook: outbound only)"
        result.append(
            IntegrationOverview(
                id=integration.id,
                provider=integration.provider_name,
                display_name=integration.display_name or integration.provider_name,
                status=integration.status,
                webhook_route=route,
                allow_private_targets=bool(integration.configuration.get("allow_private_targets", False)),
                last_delivery_at=last.get(integration.id),
                counts=counts.get(integration.id, {}),
                failures=failures.get(integration.id, []),
            )
        )
    return result
