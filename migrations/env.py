"""Alembic environment (async). The URL comes from ``config.attributes["database_url"]`` (set by
``lma-bot migrate`` and the test harness), else from DATABASE_URL via Settings. A caller may also hand in
an open sync connection as ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from lma_bot.config import load_settings
from lma_bot.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
        **kwargs,
    )


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    settings = load_settings()
    if not settings.database_url:
        raise SystemExit(
            "DATABASE_URL: required for plain `alembic`; use `lma-bot migrate` for the embedded default"
        )
    return settings.database_url


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
