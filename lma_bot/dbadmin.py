"""Owner-side database administration: the runtime role and its privileges, and running migrations.

Migrations run as the owner (the ``DATABASE_URL`` user). The application runs as a separate role
(``LMA_DB_APP_ROLE``, default ``lma_app``) that is not a superuser, owns no table, and has no BYPASSRLS,
so row-level security applies to every query it makes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from lma_bot.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CROSS_TENANT_FUNCTIONS = (
    "lma_org_for_slack_team(text)",
    "lma_integration_for_key(text)",
    "lma_organization_ids()",
    "lma_org_for_webhook_event(bigint)",
    "lma_all_organization_ids()",
)


class RoleSetupError(Exception):
    """The runtime role cannot be used safely (e.g. it is a superuser) or cannot be created."""


@dataclass(frozen=True)
class RoleReport:
    role: str
    created: bool
    message: str


def alembic_config(database_url: str) -> Config:
    # alembic imported when used: commands that do not migrate start faster without it
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_head(database_url: str) -> None:
    """``alembic upgrade head`` (sync; runs its own event loop, so call it off the running loop)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _ensure_role(conn: AsyncConnection, role: str, password: str | None) -> RoleReport:
    row = (
        await conn.execute(
            text("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}
        )
    ).first()
    created = False
    if row is None:
        can = (
            await conn.execute(
                text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            )
        ).scalar_one()
        if not can:
            raise RoleSetupError(
                f"runtime role {role} does not exist and {await _current_user(conn)} may not create roles; "
                f"run as an admin: CREATE ROLE {role} LOGIN PASSWORD '...' NOSUPERUSER NOBYPASSRLS"
            )
        try:
            async with conn.begin_nested():
                await conn.execute(
                    text(
                        f"CREATE ROLE {_quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                    )
                )
            created = True
        except DBAPIError as exc:  # created concurrently by another migrate run
            if "already exists" not in str(exc.orig):
                raise
        row = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = :r"),
                {"r": role},
            )
        ).first()
    assert row is not None
    if row.rolsuper or row.rolbypassrls:
        raise RoleSetupError(
            f"runtime role {role} is a superuser or has BYPASSRLS; row-level security would not apply"
        )
    if password is not None:
        await conn.execute(text(f"ALTER ROLE {_quote_ident(role)} PASSWORD {_quote_literal(password)}"))
    message = f"runtime role {role} {'created' if created else 'exists'}"
    return RoleReport(role=role, created=created, message=message)


async def _current_user(conn: AsyncConnection) -> str:
    return str((await conn.execute(text("SELECT current_user"))).scalar_one())


async def _grant(conn: AsyncConnection, role: str) -> None:
    who = _quote_ident(role)
    database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    await conn.execute(text(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {who}"))
    await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {who}"))
    tables = ", ".join(_quote_ident(t.name) for t in Base.metadata.sorted_tables)
    await conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {who}"))
    await conn.execute(text(f"REVOKE ALL ON alembic_version FROM {who}"))
    await conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}"))
    for function in CROSS_TENANT_FUNCTIONS:
        await conn.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO {who}"))


async def prepare_runtime_role(database_url: str, role: str, password: str | None = None) -> RoleReport:
    """Create the runtime role if possible, check it is safe, and grant it what the app needs.

    Run after ``upgrade_head`` (grants name the tables of the current schema).
    """
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            # Serialize concurrent migrate runs (tests, several release processes) on role creation.
            await conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            report = await _ensure_role(conn, role, password)
            await _grant(conn, role)
        return report
    finally:
        await engine.dispose()


async def migrate(database_url: str, role: str, password: str | None = None) -> RoleReport:
    """``alembic upgrade head`` as the owner, then the runtime role and its grants."""
    await asyncio.to_thread(upgrade_head, database_url)
    return await prepare_runtime_role(database_url, role, password)
