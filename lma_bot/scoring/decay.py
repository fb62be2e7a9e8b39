"""Decay: leads without engagement lose points, per organization settings (``scoring.decay_points`` every
``scoring.decay_every_days`` days, never below ``scoring.decay_floor``), as history rows with reason
``decay``. Set-based, one statement per organization; idempotent (the periods are counted from the later of
the last engagement and the last decay), so any number of scheduler processes may run it at any interval.
Locked and deleted leads are left alone."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.models import Organization
from lma_bot.scoring.engine import ScoreChange, apply_rows
from lma_bot.scoring.temperature import Thresholds, temperature_sql

log = logging.getLogger(__name__)

DEFAULT_EVERY_DAYS = 7
DEFAULT_FLOOR = 0


@dataclass(frozen=True)
class DecayPolicy:
    points: int
    every_days: int
    floor: int

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> DecayPolicy:
        scoring = (settings or {}).get("scoring") or {}
        return cls(
            points=max(0, int(scoring.get("decay_points", 0))),
            every_days=max(1, int(scoring.get("decay_every_days", DEFAULT_EVERY_DAYS))),
            floor=int(scoring.get("decay_floor", DEFAULT_FLOOR)),
        )


def _sql(t: Thresholds) -> str:
    new = "(CASE WHEN d.score > :floor THEN greatest(CAST(:floor AS integer), d.score - d.periods * CAST(:points AS integer)) ELSE d.score END)"
    return f"""
WITH d AS (
  SELECT x.id, x.score, x.lead_temperature, x.anchor,
         floor(extract(epoch FROM (CAST(:now AS timestamptz) - x.anchor)) / (CAST(:every AS integer) * 86400))::integer AS periods
  FROM (
    SELECT l.id, l.score, l.lead_temperature,
           greatest(coalesce(l.last_engagement_date, l.created_at), coalesce(l.score_decayed_at, l.created_at))
             AS anchor
    FROM leads l
    WHERE l.organization_id = :org AND l.deleted_at IS NULL AND l.score_locked_at IS NULL
      AND greatest(coalesce(l.last_engagement_date, l.created_at), coalesce(l.score_decayed_at, l.created_at))
          <= CAST(:now AS timestamptz) - make_interval(days => CAST(:every AS integer))
    FOR UPDATE
  ) x
),
upd AS (
  UPDATE leads l SET score = {new},
         lead_temperature = {temperature_sql("d.lead_temperature", new, t)},
         score_decayed_at = d.anchor + make_interval(days => d.periods * :every)
  FROM d WHERE l.organization_id = :org AND l.id = d.id
  RETURNING l.id, d.score AS previous, l.score, d.lead_temperature AS previous_temperature, l.lead_temperature,
            l.assigned_to_id
),
hist AS (
  INSERT INTO lead_score_history (organization_id, lead_id, previous_score, new_score, score_change, reason, kind)
  SELECT :org, id, previous, score, score - previous, 'decay', 'decay' FROM upd WHERE score <> previous
)
SELECT * FROM upd WHERE score <> previous
"""


async def apply_decay(
    session: AsyncSession, *, org_id: int, now: dt.datetime | None = None
) -> list[ScoreChange]:
    org = await session.get(Organization, org_id)
    settings = org.settings if org is not None else {}
    policy = DecayPolicy.from_settings(settings)
    if policy.points <= 0:
        return []
    thresholds = Thresholds.from_settings(settings)
    channel = ((settings or {}).get("scoring") or {}).get("hot_alert_channel")
    rows = (
        await session.execute(
            text(_sql(thresholds)),
            {
                "org": org_id,
                "now": now or dt.datetime.now(dt.UTC),
                "every": policy.every_days,
                "points": policy.points,
                "floor": policy.floor,
            },
        )
    ).all()
    changes = await apply_rows(session, org_id, rows, alert_channel=channel, fire_workflows=False)
    if changes:
        log.info("scoring.decayed org=%s leads=%s", org_id, len(changes))
    return changes
