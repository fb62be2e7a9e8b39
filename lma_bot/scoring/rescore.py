"""Rescore a whole organization, set-based: the same statement incremental scoring runs for one lead
(:func:`lma_bot.scoring.compile.apply_sql`), over ranges of lead ids, in one transaction. Each range is one
statement: every lead's rule contributions computed in one pass, compared with ``leads.rule_points``, and
only the leads that differ written (score, temperature, ``rule_points``, one history row each). A second
rescore writes nothing.

No row locks up front: the rescore holds the organization's scoring lock exclusively
(:func:`lma_bot.scoring.engine.take_scoring_lock`), so it starts after the incremental scorers that were
running have committed; a scorer that starts meanwhile loads the new rules, and the rescore's update skips
a lead whose ``rule_points`` changed under it (that scorer's result stands)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import Database
from lma_bot.scoring.compile import apply_sql
from lma_bot.scoring.engine import (
    ScoreChange,
    ScoringConfig,
    apply_rows,
    load_config,
    take_changes,
    take_scoring_lock,
)
from lma_bot.scoring.publish import ScorePublisher

log = logging.getLogger(__name__)

CHUNK = 25_000
#: connections a rescore uses side by side (this is a 2-core machine), and their ranges' size
WORKERS = 2
PARALLEL_CHUNK = 10_000
WORK_MEM = "64MB"

#: ``progress(done_leads, total_leads)``
Progress = Callable[[int, int], None]


@dataclass
class RescoreSummary:
    org_id: int
    leads: int = 0
    rules: int = 0
    changed: int = 0
    points_added: int = 0
    points_removed: int = 0
    history_rows: int = 0
    became_hot: int = 0
    seconds: float = 0.0
    changes: list[ScoreChange] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, object]:
        return {
            "organization_id": self.org_id,
            "leads": self.leads,
            "rules": self.rules,
            "changed": self.changed,
            "points_added": self.points_added,
            "points_removed": self.points_removed,
            "history_rows": self.history_rows,
            "became_hot": self.became_hot,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Plan:
    config: ScoringConfig
    statement: TextClause
    params: dict[str, object]
    total: int
    ranges: list[tuple[int, int, int]]  # (lo, hi, live leads up to hi) lead id ranges


async def _tune(session: AsyncSession) -> None:
    # sorts and the per-range tuplestores in memory; no JIT (compiling this statement costs seconds)
    await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    await session.execute(text("SET LOCAL jit = off"))


async def _plan(session: AsyncSession, org_id: int, chunk: int) -> _Plan:
    config = await load_config(session, org_id)
    bounds = (
        await session.execute(
            text(
                "SELECT count(*), min(id), max(id) FROM leads WHERE organization_id = :org AND deleted_at IS NULL"
            ),
            {"org": org_id},
        )
    ).one()
    total, low, high = int(bounds[0]), bounds[1], bounds[2]
    ranges: list[tuple[int, int, int]] = []
    if total:
        # ranges of about ``chunk`` live leads each (ids may have gaps), for the progress bar
        low, high = int(low), int(high)
        span = high - low + 1
        step = max(1, span * chunk // total)
        lo = low
        while lo <= high:
            hi = min(lo + step - 1, high)
            ranges.append((lo, hi, total if hi >= high else min(total, round(total * (hi - low + 1) / span))))
            lo = hi + 1
    compiled = apply_sql(
        config.rules, config.thresholds, scope="range", reason_prefix="rescore: ", names=config.names
    )
    return _Plan(
        config, text(compiled.sql), {**compiled.params, "org": org_id, "event_id": None}, total, ranges
    )


async def _rescore_range(session: AsyncSession, org_id: int, plan: _Plan, lo: int, hi: int) -> int:
    """Rescore lead ids ``lo..hi`` (one statement); the changes are noted on the session. Returns the
    number of history rows written."""
    rows = (await session.execute(plan.statement, {**plan.params, "lo": lo, "hi": hi})).all()
    await apply_rows(
        session,
        org_id,
        [r for r in rows if r[1] != r[2]],
        alert_channel=plan.config.alert_channel,
        fire_workflows=False,
    )
    return sum(1 for r in rows if r[6])


def _summarize(summary: RescoreSummary, started: float) -> RescoreSummary:
    summary.changed = len(summary.changes)
    for change in summary.changes:
        diff = change.score - change.previous
        if diff > 0:
            summary.points_added += diff
        else:
            summary.points_removed -= diff
        summary.became_hot += int(change.became_hot)
    summary.seconds = time.perf_counter() - started
    log.info(
        "scoring.rescored org=%s leads=%s changed=%s history_rows=%s seconds=%.2f",
        summary.org_id,
        summary.leads,
        summary.changed,
        summary.history_rows,
        summary.seconds,
    )
    return summary


async def rescore_org(
    session: AsyncSession, *, org_id: int, progress: Progress | None = None, chunk: int = CHUNK
) -> RescoreSummary:
    """Recompute every lead's rule points of ``org_id`` inside the caller's transaction."""
    started = time.perf_counter()
    await session.flush()
    await take_scoring_lock(session, org_id)
    await _tune(session)
    plan = await _plan(session, org_id, chunk)
    summary = RescoreSummary(org_id=org_id, rules=len(plan.config.rules), leads=plan.total)
    if progress is not None:
        progress(0, plan.total)
    for lo, hi, done in plan.ranges:
        summary.history_rows += await _rescore_range(session, org_id, plan, lo, hi)
        if progress is not None:
            progress(done, plan.total)
    summary.changes = take_changes(session)
    return _summarize(summary, started)


async def _rescore_parallel(
    database: Database,
    org_id: int,
    *,
    publisher: ScorePublisher | None,
    progress: Progress | None,
    workers: int,
    chunk: int,
) -> RescoreSummary:
    """``workers`` connections rescore ranges side by side, each range in its own transaction (a lead is
    always consistent: score, ``rule_points`` and its history row commit together), published as each
    commits. A coordinating transaction holds the organization's scoring lock throughout."""
    started = time.perf_counter()
    async with database.uow(org_id) as coordinator:
        await take_scoring_lock(coordinator, org_id)
        plan = await _plan(coordinator, org_id, chunk)
        summary = RescoreSummary(org_id=org_id, rules=len(plan.config.rules), leads=plan.total)
        # (lo, hi, live leads in the range), taken from the end
        pending = [
            (lo, hi, cumulative - (plan.ranges[i - 1][2] if i else 0))
            for i, (lo, hi, cumulative) in enumerate(plan.ranges)
        ][::-1]
        done = 0
        publishing: list[asyncio.Task[None]] = []
        if progress is not None:
            progress(0, plan.total)

        async def work() -> None:
            nonlocal done
            while pending:
                lo, hi, leads = pending.pop()
                began = time.perf_counter()
                async with database.uow(org_id) as session:
                    await _tune(session)
                    written = await _rescore_range(session, org_id, plan, lo, hi)
                    changes = take_changes(session)
                    computed = time.perf_counter()
                log.debug(
                    "scoring.rescored_range org=%s ids=%s-%s changed=%s statement=%.2fs commit=%.2fs",
                    org_id,
                    lo,
                    hi,
                    len(changes),
                    computed - began,
                    time.perf_counter() - computed,
                )
                summary.history_rows += written
                summary.changes.extend(changes)
                done += leads
                if progress is not None:
                    progress(min(done, plan.total), plan.total)
                if publisher is not None and changes:
                    # in the background: the next range's statement runs meanwhile
                    publishing.append(asyncio.create_task(publisher.publish(changes)))

        try:
            await asyncio.gather(*(work() for _ in range(max(1, min(workers, len(plan.ranges))))))
        finally:
            await asyncio.gather(*publishing)
    return _summarize(summary, started)


async def rescore(
    database: Database,
    org_id: int,
    *,
    publisher: ScorePublisher | None = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> RescoreSummary:
    """Rescore ``org_id`` and publish the changes (Redis, hot alerts). What the edges run after a rule is
    added, edited or disabled (in the background), and ``lma-bot rescore``. With ``workers`` > 1, ranges of
    leads are rescored on that many connections at once, each range committed (and published) on its own;
    with 1, in one transaction, published after the commit."""
    if workers > 1:
        return await _rescore_parallel(
            database, org_id, publisher=publisher, progress=progress, workers=workers, chunk=PARALLEL_CHUNK
        )
    async with database.uow(org_id) as session:
        summary = await rescore_org(session, org_id=org_id, progress=progress)
    if publisher is not None:
        await publisher.publish(summary.changes)
    return summary
