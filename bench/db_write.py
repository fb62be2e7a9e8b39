"""Insert one lead per request: raw asyncpg (baseline) against ``uow`` + ``create_lead`` (ours).

Both variants run as the runtime role (row-level security applies), on the same throwaway database, with the
same number of concurrent workers, alternately in rounds (baseline, ours, baseline, ours, ...). Each measured
run goes into its own fresh organization so its row count can be checked exactly (as the owner) afterwards;
the warm-up before each run writes into a separate warm-up organization.

    .venv/bin/python bench/db_write.py            # full run (N=5000 per run, 20 workers), rewrites RESULTS.md
    .venv/bin/python bench/db_write.py --quick    # ~500 requests per run
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from _common import (
    DEFAULT_SERVER_URL,
    RESULTS,
    backend_cpu,
    command_line,
    cpu_delta,
    create_database,
    drop_database,
    is_local,
    machine_info,
    percentile_ms,
    server_info,
    server_url_from,
    write_results,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.db import TENANT_SETTING, Database
from lma_bot.dbadmin import migrate
from lma_bot.leads import repository
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.orgs.schemas import OrganizationCreate
from lma_bot.orgs.service import create_organization

SECTION = "db_write"

BASELINE = "baseline"
OURS = "ours"
LABELS = {
    BASELINE: "baseline: raw asyncpg",
    OURS: "ours: uow + create_lead",
}
DESCRIPTIONS = {
    BASELINE: (
        "asyncpg pool as `lma_app`; per request: acquire, `BEGIN`, "
        f"`SELECT set_config('{TENANT_SETTING}', $1, true)` (the minimal tenant work RLS needs), "
        "one `INSERT INTO leads (organization_id, email, first_name, source)`, `COMMIT`."
    ),
    OURS: (
        "`async with database.uow(org_id)` + `lma_bot.leads.service.create_lead(LeadCreate(...))` as "
        "`lma_app`: pool pre-ping, `BEGIN`, set tenant, pydantic + JSON-schema validation, duplicate-email "
        "`SELECT`, `INSERT ... RETURNING` inside a savepoint, an `activity_logs` row, `COMMIT`."
    ),
}

_SET_TENANT_SQL = f"SELECT set_config('{TENANT_SETTING}', $1, true)"
_INSERT_SQL = "INSERT INTO leads (organization_id, email, first_name, source) VALUES ($1, $2, $3, $4)"

Request = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class RunResult:
    variant: str
    round: int
    org_id: int
    n: int
    seconds: float
    p50_ms: float
    p99_ms: float
    leads_counted: int
    activity_counted: int
    client_cpu_ms: float  # this Python process, per request
    server_cpu_ms: float | None  # the benchmark database's backends, per request (local server only)

    @property
    def rows_per_s(self) -> float:
        return self.n / self.seconds

    @property
    def ok(self) -> bool:
        activity_expected = self.n if self.variant == OURS else 0
        return self.leads_counted == self.n and self.activity_counted == activity_expected


# --- setup --------------------------------------------------------------------------------------------------


async def new_organization(db: Database, name: str) -> int:
    org_id = await db.next_organization_id()
    async with db.uow(org_id) as session:
        await create_organization(session, org_id=org_id, data=OrganizationCreate(name=name))
    return org_id


# --- the two variants ------------------------------------------------------------------------------


def baseline_request(pool: Any, org_id: int, tag: str) -> Request:
    org = str(org_id)

    async def request(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_SET_TENANT_SQL, org)
            await conn.execute(_INSERT_SQL, org_id, f"{tag}-{i}@bench.example", f"Lead {i}", "bench")

    return request


def ours_request(db: Database, org_id: int, tag: str) -> Request:
    async def request(i: int) -> None:
        async with db.uow(org_id) as session:
            data = LeadCreate(email=f"{tag}-{i}@bench.example", first_name=f"Lead {i}", source="bench")
            await create_lead(session, org_id=org_id, data=data)

    return request


async def drive(request: Request, n: int, concurrency: int) -> tuple[float, list[float]]:
    """Run ``n`` requests on ``concurrency`` workers; wall seconds and per-request latencies (seconds)."""
    latencies = [0.0] * n
    indices: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for i in indices:  # shared iterator: each index is taken by exactly one worker
            started = time.perf_counter()
            await request(i)
            latencies[i] = time.perf_counter() - started

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def count_rows(owner: AsyncEngine, org_id: int) -> tuple[int, int]:
    """Leads and ``lead.created`` activity rows of ``org_id``, counted as the owner (behind RLS)."""
    async with owner.connect() as conn:
        leads = (
            await conn.execute(text("SELECT count(*) FROM leads WHERE organization_id = :o"), {"o": org_id})
        ).scalar_one()
        activity = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM activity_logs "
                    "WHERE organization_id = :o AND activity_type = 'lead.created'"
                ),
                {"o": org_id},
            )
        ).scalar_one()
    return int(leads), int(activity)


async def reset_tables(owner: AsyncEngine) -> None:
    """Empty the tables the runs write (as the owner), so every measured run starts from the same state.

    This matters for ours: its duplicate-email check reads the organization's leads (see ``dedupe_plan``).
    """
    async with owner.begin() as conn:
        await conn.execute(text("TRUNCATE leads, activity_logs CASCADE"))


async def dedupe_plan(db: Database, org_id: int) -> str:
    """How PostgreSQL runs ours' duplicate-email check (``repository.by_email``) as the runtime role."""
    stmt = repository.by_email(org_id, "plan-check@bench.example")
    sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    async with db.uow(org_id) as session:
        plan = [str(row[0]) for row in await session.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + sql))]
    scan = next((line.strip().removeprefix("->").strip() for line in plan if "Scan" in line), "?")
    scan = re.sub(r" \(actual [^)]*\)", "", scan)
    removed = next((line.strip() for line in plan if "Rows Removed by Filter" in line), None)
    uses_unique = any("uq_leads_org_email" in line for line in plan)
    summary = f"`{scan}`" + (f", {removed}" if removed else "")
    return f"{summary} (uq_leads_org_email {'used' if uses_unique else 'not used'})"


async def checkpoint(owner: AsyncEngine) -> bool:
    """Flush dirty buffers before a measured run so no run inherits another's checkpoint work."""
    try:
        async with owner.connect() as conn:
            await conn.execute(text("CHECKPOINT"))
        return True
    except DBAPIError:
        return False


async def measure(
    variant: str,
    round_no: int,
    *,
    pool: Any,
    db: Database,
    owner: AsyncEngine,
    warmup_org: int,
    n: int,
    warmup: int,
    concurrency: int,
) -> RunResult:
    def make(org_id: int, tag: str) -> Request:
        if variant == BASELINE:
            return baseline_request(pool, org_id, tag)
        return ours_request(db, org_id, tag)

    run_tag = f"r{round_no}-{variant}"
    await drive(make(warmup_org, f"warm-{run_tag}"), warmup, concurrency)
    org_id = await new_organization(db, f"Bench {run_tag}")
    await reset_tables(owner)
    await checkpoint(owner)
    local = is_local(owner.url.render_as_string())
    server_before = await backend_cpu(owner) if local else {}
    client_before = time.process_time()
    seconds, latencies = await drive(make(org_id, run_tag), n, concurrency)
    client_cpu = time.process_time() - client_before
    server_after = await backend_cpu(owner) if local else {}
    server_cpu = cpu_delta(server_before, server_after)
    leads, activity = await count_rows(owner, org_id)
    return RunResult(
        variant=variant,
        round=round_no,
        org_id=org_id,
        n=n,
        seconds=seconds,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        leads_counted=leads,
        activity_counted=activity,
        client_cpu_ms=client_cpu * 1000 / n,
        server_cpu_ms=server_cpu * 1000 / n if server_cpu is not None else None,
    )


# --- environment and report ------------------------------------------------------------------------


def best(results: list[RunResult], variant: str) -> RunResult:
    return max((r for r in results if r.variant == variant), key=lambda r: r.rows_per_s)


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "n/a"


def run_line(r: RunResult) -> str:
    check = "ok" if r.ok else "MISMATCH"
    activity = f", {r.activity_counted} activity rows" if r.variant == OURS else ""
    return (
        f"round {r.round} {r.variant:<8}: {r.n} rows in {r.seconds:6.2f} s = {r.rows_per_s:7.0f} rows/s, "
        f"p50 {r.p50_ms:6.2f} ms, p99 {r.p99_ms:6.2f} ms; CPU/request: client {r.client_cpu_ms:.2f} ms, "
        f"server backends {_ms(r.server_cpu_ms)} ms; check: {r.leads_counted} leads{activity} "
        f"in org {r.org_id} -> {check}"
    )


def render_section(
    *,
    command: str,
    when: dt.datetime,
    machine: str,
    n: int,
    concurrency: int,
    warmup: int,
    rounds: int,
    results: list[RunResult],
    plan: str,
) -> str:
    base, ours = best(results, BASELINE), best(results, OURS)
    order = ", ".join([BASELINE, OURS] * rounds)
    lines = [
        "## db_write: insert one lead per request",
        "",
        f"- Command: `{command}`",
        f"- Date (UTC): {when:%Y-%m-%d %H:%M:%S}",
        f"- Machine: {machine}",
        f"- Parameters: N={n} requests per run, concurrency={concurrency} workers, warm-up {warmup} "
        f"requests before each run; {rounds} rounds ({order}); best round (highest rows/s) of each shown. "
        "Each measured run writes into a fresh organization, and `leads`/`activity_logs` are truncated "
        "(as the owner) after the warm-up, so every run starts from the same empty tables.",
        "",
        "| variant | rows/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| {LABELS[BASELINE]} | {base.rows_per_s:.0f} | {base.p50_ms:.2f} | {base.p99_ms:.2f} |",
        f"| {LABELS[OURS]} | {ours.rows_per_s:.0f} | {ours.p50_ms:.2f} | {ours.p99_ms:.2f} |",
        "",
        f"Ratio ours/baseline: throughput {ours.rows_per_s / base.rows_per_s:.2f}x, "
        f"p50 latency {ours.p50_ms / base.p50_ms:.2f}x, p99 latency {ours.p99_ms / base.p99_ms:.2f}x.",
        "",
        f"- **baseline**: {DESCRIPTIONS[BASELINE]}",
        f"- **ours**: {DESCRIPTIONS[OURS]}",
        f"- Plan of ours' duplicate-email check (`repository.by_email`, `EXPLAIN ANALYZE` as `lma_app`, on an "
        f"organization holding {n} leads after the runs): {plan}. Its cost grows with the organization's "
        f"lead count; over a run it reads 0 to {n - 1} leads.",
        "",
        "All rounds. Row counts are checked as the owner after each run. CPU is per request: client = this "
        "Python process (`time.process_time`), server = the benchmark database's backends (`/proc/PID/schedstat`; "
        "local server only; WAL writer and other background processes not included).",
        "",
        "| round | variant | rows/s | p50 ms | p99 ms | client CPU ms | server CPU ms | rows counted |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        counted = f"{r.leads_counted} leads" + (
            f", {r.activity_counted} activity" if r.variant == OURS else ""
        )
        lines.append(
            f"| {r.round} | {r.variant} | {r.rows_per_s:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.client_cpu_ms:.2f} | {_ms(r.server_cpu_ms)} | "
            f"{counted} ({'ok' if r.ok else 'MISMATCH'}) |"
        )
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace, argv: list[str]) -> int:
    n: int = args.n if args.n is not None else (500 if args.quick else 5000)
    concurrency: int = args.concurrency
    warmup = max(n // 10, 2 * concurrency)
    rounds = 2
    server_url = server_url_from(args.server_url)
    if n < 2 or concurrency < 1:
        print("--n must be at least 2 and --concurrency at least 1", file=sys.stderr)
        return 2

    bench = await create_database(server_url)
    print(f"database {bench.db_name} on {make_url(server_url).render_as_string(hide_password=True)}")
    owner = create_async_engine(bench.owner_url, pool_size=1)
    db: Database | None = None
    pool: Any = None
    try:
        await migrate(bench.owner_url, DEFAULT_APP_ROLE)
        machine = machine_info(await server_info(owner))
        print(f"machine: {machine}")
        print(f"N={n} per run, concurrency={concurrency}, warm-up {warmup} per run, {rounds} rounds")

        db = Database.from_url(bench.app_url, pool_size=concurrency, application_name="lma-bot bench")
        pool = await asyncpg.create_pool(bench.baseline_dsn, min_size=concurrency, max_size=concurrency)
        warmup_org = await new_organization(db, "Bench warm-up")

        results: list[RunResult] = []
        for round_no in range(1, rounds + 1):
            for variant in (BASELINE, OURS):
                result = await measure(
                    variant,
                    round_no,
                    pool=pool,
                    db=db,
                    owner=owner,
                    warmup_org=warmup_org,
                    n=n,
                    warmup=warmup,
                    concurrency=concurrency,
                )
                results.append(result)
                print(run_line(result), flush=True)
        last_ours = [r for r in results if r.variant == OURS][-1]  # earlier runs' leads were truncated
        async with owner.begin() as conn:
            await conn.execute(text("ANALYZE leads"))  # plans on real statistics, as autovacuum would give
        plan = await dedupe_plan(db, last_ours.org_id)
        print(f"ours' duplicate-email check on an organization with {n} leads: {plan}")
    finally:
        if pool is not None:
            await pool.close()
        if db is not None:
            await db.dispose()
        await owner.dispose()
        await drop_database(server_url, bench.db_name)
        print(f"dropped {bench.db_name}")

    base, ours = best(results, BASELINE), best(results, OURS)
    print()
    print(f"{'variant':<28} {'rows/s':>8} {'p50 ms':>8} {'p99 ms':>8}   (best of {rounds} rounds)")
    for r in (base, ours):
        print(f"{LABELS[r.variant]:<28} {r.rows_per_s:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}")
    print(
        f"ratio ours/baseline: throughput {ours.rows_per_s / base.rows_per_s:.2f}x, "
        f"p50 {ours.p50_ms / base.p50_ms:.2f}x, p99 {ours.p99_ms / base.p99_ms:.2f}x"
    )
    all_ok = all(r.ok for r in results)
    print(f"row counts: {'every run inserted exactly N rows' if all_ok else 'MISMATCH (see above)'}")

    if not args.no_write:
        section = render_section(
            command=command_line("bench/db_write.py", argv),
            when=dt.datetime.now(dt.UTC),
            machine=machine,
            n=n,
            concurrency=concurrency,
            warmup=warmup,
            rounds=rounds,
            results=results,
            plan=plan,
        )
        write_results(SECTION, section)
        print(f"wrote {RESULTS}")
    return 0 if all_ok else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=int, default=None, help="requests per run (default 5000; 500 with --quick)"
    )
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent workers (default 20)")
    parser.add_argument("--quick", action="store_true", help="about 500 requests per run")
    parser.add_argument(
        "--server-url",
        default=None,
        help="server URL whose user may create databases (default: TEST_DATABASE_URL, DATABASE_URL, "
        f"else {DEFAULT_SERVER_URL})",
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not touch {RESULTS.name}")
    return parser.parse_args(argv[1:])


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv), sys.argv)))
