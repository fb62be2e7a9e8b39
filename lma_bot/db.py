"""Engine and session factories, and ``uow(org_id)``: one transaction with the tenant set inside it.

Every tenant query runs inside :meth:`Database.uow`, which sets ``app.current_organization_id`` with
``set_config(..., true)`` (transaction-local), so a pooled connection never carries a tenant into the next
transaction. Row-level security in PostgreSQL is the second wall behind the org-scoped repositories.

Work that must look across tenants goes through exactly one narrow path: the ``lma_*`` SECURITY DEFINER
functions created by the RLS migration, called by the ``resolve_*``/``organization_ids`` methods below.
They return ids only, never tenant rows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from lma_bot.config import Settings

log = logging.getLogger(__name__)

TENANT_SETTING = "app.current_organization_id"
_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :org, true)")


class TenantError(ValueError):
    """An organization id that cannot be a tenant (not a positive integer)."""


def runtime_database_url(settings: Settings, admin_url: str) -> str:
    """The URL the application connects with: ``LMA_APP_DATABASE_URL``, else ``admin_url`` as the app role."""
    if settings.app_database_url:
        return settings.app_database_url
    url: URL = make_url(admin_url).set(username=settings.db_app_role, password=settings.db_app_password)
    return url.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "lma-bot") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


class Database:
    """Owns the runtime engine; hands out tenant-scoped units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10, application_name: str = "lma-bot") -> Database:
        return cls(create_engine(url, pool_size=pool_size, application_name=application_name))

    @asynccontextmanager
    async def uow(self, org_id: int) -> AsyncIterator[AsyncSession]:
        """One transaction for organization ``org_id``; commits on success, rolls back on error.

        Services never commit; the edge (a handler, a job, a CLI command) owns this block. Slack posts and
        queue pushes belong after it.
        """
        if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
            raise TenantError(f"not an organization id: {org_id!r}")
        async with self.sessionmaker() as session, session.begin():
            await session.execute(_SET_TENANT, {"org": str(org_id)})
            yield session

    async def resolve_slack_team(self, team_id: str) -> int | None:
        """Organization id for a Slack team id (cross-tenant lookup, id only)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(text("SELECT lma_org_for_slack_team(:t)"), {"t": team_id})
            value = result.scalar_one_or_none()
            return int(value) if value is not None else None

    async def resolve_webhook_key(self, key_hash: str) -> tuple[int, int] | None:
        """``(organization_id, integration_id)`` for a webhook key's SHA-256 (cross-tenant lookup, ids only)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text("SELECT organization_id, integration_id FROM lma_integration_for_key(:h)"),
                {"h": key_hash},
            )
            row = result.first()
            return (int(row[0]), int(row[1])) if row is not None else None

    async def resolve_webhook_event(self, event_id: int) -> int | None:
        """Organization id of a stored webhook event (for ``lma-bot webhooks replay``; id only)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(text("SELECT lma_org_for_webhook_event(:e)"), {"e": event_id})
            value = result.scalar_one_or_none()
            return int(value) if value is not None else None

    async def organization_ids(self, *, include_inactive: bool = False) -> list[int]:
        """Ids of active organizations (all with ``include_inactive``): the only way a scan across tenants
        (the scheduler, key rotation) learns which tenants to visit."""
        function = "lma_all_organization_ids" if include_inactive else "lma_organization_ids"
        async with self.engine.connect() as conn:
            result = await conn.execute(text(f"SELECT {function}()"))
            return [int(v) for v in result.scalars()]

    async def next_organization_id(self) -> int:
        """Reserve an id for a new organization, so it can be created inside ``uow(new_id)``."""
        async with self.engine.connect() as conn:
            result = await conn.execute(text("SELECT nextval(pg_get_serial_sequence('organizations', 'id'))"))
            return int(result.scalar_one())

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
