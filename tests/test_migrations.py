"""Migrations: they round-trip (downgrade base, upgrade head) and they match the models (no drift)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from lma_bot.dbadmin import alembic_config
from lma_bot.models import Base
from tests.conftest import ScratchDatabase, Servers, create_test_database, drop_test_database


@pytest.fixture(scope="module")
async def scratch(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    database = await create_test_database(servers, prefix="lma_migr")
    yield database
    await drop_test_database(servers, database.name)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        names = {str(r[0]) for r in rows}
    await engine.dispose()
    return names


async def _diff(url: str, metadata: MetaData) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)

    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


async def test_downgrade_base_then_upgrade_head(scratch: ScratchDatabase) -> None:
    config = alembic_config(scratch.owner_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    assert set(Base.metadata.tables) <= await _tables(scratch.owner_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _tables(scratch.owner_url) == {"alembic_version"}
    await asyncio.to_thread(command.upgrade, config, "head")
    assert set(Base.metadata.tables) <= await _tables(scratch.owner_url)


async def test_models_and_migrations_do_not_drift(scratch: ScratchDatabase) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(scratch.owner_url), "head")
    assert await _diff(scratch.owner_url, Base.metadata) == []


async def test_drift_check_notices_a_model_change(scratch: ScratchDatabase) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(scratch.owner_url), "head")
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    Table("leads", changed, Column("fax_number", Integer), extend_existing=True)
    diff = await _diff(scratch.owner_url, changed)
    assert any(op[0] == "add_column" and op[3].name == "fax_number" for op in diff), diff


def test_revisions_follow_the_seed_phases() -> None:
    script = alembic_config("postgresql+asyncpg://unused/x")
    from alembic.script import ScriptDirectory

    revisions = list(reversed(list(ScriptDirectory.from_config(script).walk_revisions())))
    assert [r.revision for r in revisions][:5] == ["0001", "0002", "0003", "0004", "0005"]
    assert "row-level security" in (revisions[4].doc or "").lower()
