"""Rescore a whole organization, set-based: the same statement incremental scoring runs for one lead
(:func:`lma_bot.scoring.compile.apply_sql`), over ranges of lead ids, in one transaction. Each range locks its
leads first (``FOR UPDATE``) so an event scored concurrently is either seen by the rescore or scored after
it, never half of each. Only differences are written: a second rescore writes nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import Database
from lma_bot.scoring.compile import apply_sql
from lma_bot.scoring.engine import ScoreChange, apply_rows, load_config, take_changes
from lma_bot.scoring.publish import ScorePublisher

log = logging.getLogger(__name__)

CHUNK = 25_000

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


async def rescore_org(
    session: AsyncSession, *, org_id: int, progress: Progress | None = None, chunk: int = CHUNK
) -> RescoreSummary:
    """Recompute every lead's rule points of ``org_id`` inside the caller's transaction."""
    started = time.perf_counter()
    await session.flush()
    config = await load_config(session, org_id)
    summary = RescoreSummary(org_id=org_id, rules=len(config.rules))
    bounds = (
        await session.execute(
            text(
                "SELECT count(*), min(id), max(id) FROM leads WHERE organization_id = :org AND deleted_at IS NULL"
            ),
            {"org": org_id},
        )
    ).one()
    total, low, high = int(bounds[0]), bounds[1], bounds[2]
    summary.leads = total
    history_before = await _history_max(session, org_id)
    compiled = apply_sql(config.rules, config.thresholds, scope="range", reason_prefix="rescore: ")
    done = 0
    if progress is not None:
        progress(0, total)
    if total:
        lo = int(low)
        while lo <= int(high):
            hi = lo + chunk - 1
            await session.execute(
                text(
                    "SELECT count(*) FROM (SELECT id FROM leads WHERE organization_id = :org "
                    "AND id BETWEEN :lo AND :hi ORDER BY id FOR UPDATE) x"
                ),
                {"org": org_id, "lo": lo, "hi": hi},
            )
            rows = (
                await session.execute(
                    text(compiled.sql),
                    {**compiled.params, "org": org_id, "event_id": None, "lo": lo, "hi": hi},
                )
            ).all()
            await apply_rows(session, org_id, rows, alert_channel=config.alert_channel, fire_workflows=False)
            done = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM leads WHERE organization_id = :org AND deleted_at IS NULL "
                        "AND id <= :hi"
                    ),
                    {"org": org_id, "hi": hi},
                )
            ).scalar_one()
            if progress is not None:
                progress(int(done), total)
            lo = hi + 1
    summary.changes = take_changes(session)
    summary.changed = len(summary.changes)
    for change in summary.changes:
        diff = change.score - change.previous
        if diff > 0:
            summary.points_added += diff
        else:
            summary.points_removed -= diff
        summary.became_hot += int(change.became_hot)
    summary.history_rows = await _history_since(session, org_id, history_before)
    summary.seconds = time.perf_counter() - started
    log.info(
        "scoring.rescored org=%s leads=%s changed=%s history_rows=%s seconds=%.2f",
        org_id,
        summary.leads,
        summary.changed,
        summary.history_rows,
        summary.seconds,
    )
    return summary


async def _history_max(session: AsyncSession, org_id: int) -> int:
    value = (
        await session.execute(
            text("SELECT max(id) FROM lead_score_history WHERE organization_id = :org"), {"org": org_id}
        )
    ).scalar_one()
    return int(value or 0)


async def _history_since(session: AsyncSession, org_id: int, after: int) -> int:
    value = (
        await session.execute(
            text("SELECT count(*) FROM lead_score_history WHERE organization_id = :org AND id > :after"),
            {"org": org_id, "after": after},
        )
    ).scalar_one()
    return int(value)


async def rescore(
    database: Database,
    org_id: int,
    *,
    publisher: ScorePublisher | None = None,
    progress: Progress | None = None,
) -> RescoreSummary:
    """Rescore ``org_id`` in its own unit of work, then publish the changes (Redis, hot alerts). What the
    edges run after a rule is added, edited or disabled (in the background), and ``lma-bot rescore``."""
    async with database.uow(org_id) as session:
        summary = await rescore_org(session, org_id=org_id, progress=progress)
    if publisher is not None:
        await publisher.publish(summary.changes)
    return summary
