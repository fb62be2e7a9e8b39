"""Shared by the bench scripts: throwaway databases, machine description, percentiles, CPU of local
PostgreSQL backends, the command line as run, and rewriting one script's section of RESULTS.md."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import statistics
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from lma_bot.config import DEFAULT_APP_ROLE

DEFAULT_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_HEADER = (
    "# Benchmark results\n\nEach section below is written (and rewritten) by the script it names.\n"
)


@dataclass(frozen=True)
class Bench:
    """A throwaway database: the server it lives on, its owner's and the runtime role's URLs."""

    server_url: str
    owner_url: str
    app_url: str
    baseline_dsn: str  # the runtime role's URL for plain asyncpg
    db_name: str


# --- databases -------------------------------------------------------------------------------------


def asyncpg_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return url if scheme == "postgresql+asyncpg" else "postgresql+asyncpg://" + rest


def server_url_from(arg: str | None) -> str:
    """``--server-url``, else ``TEST_DATABASE_URL``, else ``DATABASE_URL``, else the local default."""
    return asyncpg_url(
        arg or os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    )


def _admin_engine(server_url: str) -> AsyncEngine:
    return create_async_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


async def create_database(server_url: str, prefix: str = "lma_bench") -> Bench:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(server_url)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    owner_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    app = make_url(owner_url).set(username=DEFAULT_APP_ROLE, password=None)
    return Bench(
        server_url=server_url,
        owner_url=owner_url,
        app_url=app.render_as_string(hide_password=False),
        baseline_dsn=app.set(drivername="postgresql").render_as_string(hide_password=False),
        db_name=name,
    )


async def drop_database(server_url: str, name: str) -> None:
    admin = _admin_engine(server_url)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def is_local(url: str) -> bool:
    host = make_url(url).host
    return host in (None, "", "localhost", "127.0.0.1", "::1")


# --- CPU -------------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int, *, comm: str | None = None) -> float | None:
    """CPU time of a local process from /proc/PID/schedstat (ns); None if gone (or not named ``comm``)."""
    try:
        if comm is not None and Path(f"/proc/{pid}/comm").read_text().strip() != comm:
            return None
        schedstat = Path(f"/proc/{pid}/schedstat").read_text()
    except OSError:
        return None
    return int(schedstat.split()[0]) / 1e9


async def backend_cpu(owner: AsyncEngine) -> dict[int, float]:
    """CPU seconds so far of each server backend connected to the benchmark database (local server)."""
    async with owner.connect() as conn:
        pids = (
            await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).scalars()
        cpu = {int(pid): proc_cpu_seconds(int(pid), comm="postgres") for pid in pids}
    return {pid: seconds for pid, seconds in cpu.items() if seconds is not None}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU spent between two ``backend_cpu`` snapshots by the backends connected at the second."""
    if not after:
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# --- statistics ------------------------------------------------------------------------------------


def percentile_ms(latencies: list[float], pct: int) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[pct - 1] * 1000


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


# --- environment -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return "unknown RAM"


async def server_info(owner: AsyncEngine) -> str:
    async with owner.connect() as conn:
        version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        sync = (await conn.execute(text("SHOW synchronous_commit"))).scalar_one()
        fsync = (await conn.execute(text("SHOW fsync"))).scalar_one()
        revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    return f"PostgreSQL {version} (synchronous_commit={sync}, fsync={fsync}), schema at alembic revision {revision}"


def machine_info(
    server: str,
    *,
    libraries: dict[str, str] | None = None,
    placement: str = "client and server on the same host",
) -> str:
    """One line: CPUs, RAM, ``server``, Python and ``libraries`` (default asyncpg and SQLAlchemy)."""
    nproc = len(os.sched_getaffinity(0))
    python = ".".join(str(part) for part in sys.version_info[:3])
    libs = libraries or {"asyncpg": asyncpg.__version__, "SQLAlchemy": sqlalchemy.__version__}
    shown = ", ".join(f"{name} {version}" for name, version in libs.items())
    return f"{nproc} CPUs (nproc), {cpu_model()}, {ram()}; {server}; Python {python}, {shown}; {placement}"


def command_line(script: str, argv: list[str]) -> str:
    """How the bench was run (``script`` = ``bench/<name>.py``), with any password in a URL hidden."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = "python"
    args: list[str] = []
    for arg in argv[1:]:  # never write a password into the results
        if "://" in arg:
            arg = make_url(arg).render_as_string(hide_password=True)
        args.append(arg)
    return shlex.join([shown, script, *args])


# --- RESULTS.md ------------------------------------------------------------------------------------


def write_results(name: str, section: str, path: Path = RESULTS) -> None:
    """Replace the ``<!-- name:start -->`` ... ``<!-- name:end -->`` section of ``path``, keeping everything
    else; append it (creating the file) if absent."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    block = f"{start}\n{section.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(existing):
        updated = pattern.sub(lambda _: block, existing, count=1)
    else:
        updated = existing.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(updated)


async def stop_process(proc: asyncio.subprocess.Process, grace: float = 30) -> None:
    """SIGTERM a child process (a server, a scheduler, a fake), SIGKILL it if it is still running after
    ``grace`` seconds."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def until_terminated() -> None:
    """Return once this process gets SIGINT or SIGTERM (a bench's child server waits here)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
