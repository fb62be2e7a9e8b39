"""Scoring verbs for the edges (Slack, CLI): rules CRUD, the `/lead score` breakdown, manual adjustments
and the score lock. Services never commit; after the commit, changed rules want a background rescore
(:func:`lma_bot.scoring.rescore.rescore`) and score changes are published (:mod:`lma_bot.scoring.publish`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import InvalidInput, NotFound, PermissionDenied
from lma_bot.models import Lead, LeadScoreHistory, LeadScoringRule, User
from lma_bot.models.scoring import RULE_TYPES
from lma_bot.scoring.engine import ScoreChange, apply_rows, load_config, score_leads
from lma_bot.scoring.rules import validate_rule
from lma_bot.scoring.temperature import temperature_sql

MANAGER_ROLES = ("manager", "admin")
MAX_REASON = 400


class RuleInput(BaseModel):
    """A rule as an admin writes it (the Slack modal's JSON, the CLI)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    rule_type: str = "behavioral"
    criteria: Any
    points: Any
    repeat_policy: Any = "once_per_lead"
    repeat_limit: Any = None
    priority: Any = 1
    is_active: bool = True


def check_rule(data: RuleInput) -> None:
    """Refuse an invalid rule with the JSON path and reason (``criteria.all[1].op: unknown operator "eqq"``)."""
    if data.rule_type not in RULE_TYPES:
        raise InvalidInput(f"rule_type: one of {', '.join(RULE_TYPES)}", field="rule_type")
    validate_rule(
        criteria=data.criteria,
        points=data.points,
        repeat_policy=data.repeat_policy,
        repeat_limit=data.repeat_limit,
        priority=data.priority,
    )


def _require_role(actor: User, roles: tuple[str, ...], what: str) -> None:
    if actor.role not in roles:
        raise PermissionDenied(f"only {' or '.join(f'{r}s' for r in roles)} can {what}")


async def create_rule(
    session: AsyncSession, *, org_id: int, data: RuleInput, actor: User | None
) -> LeadScoringRule:
    """Add a rule (admins). Rescore the organization after the commit to apply it to existing leads."""
    if actor is not None:
        _require_role(actor, ("admin",), "add scoring rules")
    check_rule(data)
    rule = LeadScoringRule(
        organization_id=org_id,
        name=data.name,
        description=data.description,
        rule_type=data.rule_type,
        criteria=data.criteria,
        score_points=data.points,
        is_active=data.is_active,
        priority=data.priority,
        repeat_policy=data.repeat_policy,
        repeat_limit=data.repeat_limit,
        created_by=actor.id if actor else None,
    )
    session.add(rule)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id if actor else None,
        activity_type="scoring_rule.created",
        entity_type="scoring_rule",
        entity_id=rule.id,
        after=data.model_dump(mode="json"),
    )
    return rule


async def get_rule(session: AsyncSession, *, org_id: int, rule_id: int) -> LeadScoringRule:
    rule = (
        await session.execute(
            select(LeadScoringRule).where(
                LeadScoringRule.organization_id == org_id, LeadScoringRule.id == rule_id
            )
        )
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound(f"scoring rule {rule_id} not found")
    return rule


async def update_rule(
    session: AsyncSession, *, org_id: int, rule_id: int, data: RuleInput, actor: User | None
) -> LeadScoringRule:
    """Replace a rule's definition (admins); rescore after the commit."""
    if actor is not None:
        _require_role(actor, ("admin",), "edit scoring rules")
    check_rule(data)
    rule = await get_rule(session, org_id=org_id, rule_id=rule_id)
    before = {
        "name": rule.name,
        "criteria": rule.criteria,
        "points": rule.score_points,
        "is_active": rule.is_active,
    }
    rule.name = data.name
    rule.description = data.description
    rule.rule_type = data.rule_type
    rule.criteria = data.criteria
    rule.score_points = data.points
    rule.is_active = data.is_active
    rule.priority = data.priority
    rule.repeat_policy = data.repeat_policy
    rule.repeat_limit = data.repeat_limit
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id if actor else None,
        activity_type="scoring_rule.updated",
        entity_type="scoring_rule",
        entity_id=rule.id,
        before=before,
        after=data.model_dump(mode="json"),
    )
    return rule


async def set_rule_active(
    session: AsyncSession, *, org_id: int, rule_id: int, active: bool, actor: User | None
) -> LeadScoringRule:
    """Enable or disable a rule (admins); rescore after the commit takes a disabled rule's points back.
    Rules are never deleted: their history keeps pointing at them."""
    if actor is not None:
        _require_role(actor, ("admin",), "enable or disable scoring rules")
    rule = await get_rule(session, org_id=org_id, rule_id=rule_id)
    if rule.is_active != active:
        rule.is_active = active
        await session.flush()
        await record(
            session,
            org_id=org_id,
            actor_id=actor.id if actor else None,
            activity_type="scoring_rule.enabled" if active else "scoring_rule.disabled",
            entity_type="scoring_rule",
            entity_id=rule.id,
        )
    return rule


async def list_rules(
    session: AsyncSession, *, org_id: int, include_inactive: bool = True
) -> list[LeadScoringRule]:
    stmt = select(LeadScoringRule).where(LeadScoringRule.organization_id == org_id)
    if not include_inactive:
        stmt = stmt.where(LeadScoringRule.is_active.is_(True))
    return list(
        (await session.execute(stmt.order_by(LeadScoringRule.priority.desc(), LeadScoringRule.id))).scalars()
    )


# ---------------------------------------------------------------- `/lead score`


@dataclass(frozen=True)
class RuleLine:
    rule_id: int
    name: str
    points: int
    firings: int
    last_fired_at: dt.datetime | None


@dataclass(frozen=True)
class HistoryLine:
    id: int
    created_at: dt.datetime
    previous_score: int
    new_score: int
    delta: int
    kind: str
    reason: str | None
    rule_id: int | None
    event_id: int | None
    changed_by: int | None


@dataclass(frozen=True)
class ScoreBreakdown:
    lead_id: int
    score: int
    temperature: str
    locked_at: dt.datetime | None
    rules: list[RuleLine]  # what each rule gives now, biggest first
    manual_points: int  # the sum of manual adjustments
    decay_points: int  # the sum of decay (<= 0)
    recent: list[HistoryLine]  # newest first
    series: list[tuple[dt.datetime, int]]  # (when, score after) oldest first, for a chart


async def score_breakdown(
    session: AsyncSession, *, org_id: int, lead_id: int, recent: int = 5, series: int = 200
) -> ScoreBreakdown:
    lead = (
        await session.execute(select(Lead).where(Lead.organization_id == org_id, Lead.id == lead_id))
    ).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    lines = [
        RuleLine(int(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4])
        for r in await session.execute(
            text(
                "SELECT r.id, r.name, (e.value ->> 0)::int AS points, (e.value ->> 1)::int AS firings, "
                "to_timestamp(CAST(nullif(e.value -> 2, 'null') AS numeric)) AS last_fired_at "
                "FROM leads l CROSS JOIN LATERAL jsonb_each(l.rule_points) e "
                "JOIN lead_scoring_rules r ON r.organization_id = l.organization_id AND r.id = e.key::int "
                "WHERE l.organization_id = :org AND l.id = :lead "
                "ORDER BY abs((e.value ->> 0)::int) DESC, r.id"
            ),
            {"org": org_id, "lead": lead_id},
        )
    ]
    totals: dict[str, int] = dict(
        (
            await session.execute(
                select(LeadScoreHistory.kind, func.coalesce(func.sum(LeadScoreHistory.score_change), 0))
                .where(LeadScoreHistory.organization_id == org_id, LeadScoreHistory.lead_id == lead_id)
                .where(LeadScoreHistory.kind.in_(("manual", "decay")))
                .group_by(LeadScoreHistory.kind)
            )
        )
        .tuples()
        .all()
    )
    history = list(
        (
            await session.execute(
                select(LeadScoreHistory)
                .where(LeadScoreHistory.organization_id == org_id, LeadScoreHistory.lead_id == lead_id)
                .order_by(LeadScoreHistory.id.desc())
                .limit(max(recent, series))
            )
        ).scalars()
    )
    return ScoreBreakdown(
        lead_id=lead.id,
        score=lead.score,
        temperature=lead.lead_temperature,
        locked_at=lead.score_locked_at,
        rules=lines,
        manual_points=int(totals.get("manual", 0)),
        decay_points=int(totals.get("decay", 0)),
        recent=[
            HistoryLine(
                h.id,
                h.created_at,
                h.previous_score,
                h.new_score,
                h.score_change,
                h.kind,
                h.reason,
                h.rule_id,
                h.event_id,
                h.changed_by,
            )
            for h in history[:recent]
        ],
        series=[(h.created_at, h.new_score) for h in reversed(history[:series])],
    )


# ---------------------------------------------------------------- manual adjustments and the lock


async def adjust_score(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    actor: User,
    reason: str,
    delta: int | None = None,
    set_to: int | None = None,
    lock: bool | None = None,
) -> ScoreChange | None:
    """A manager moves a lead's score by ``delta`` (or to ``set_to``) with a reason: one history row (kind
    ``manual``, the manager in ``changed_by``). ``lock=True`` also locks the score (rules and decay leave it
    alone until :func:`unlock_score`)."""
    _require_role(actor, MANAGER_ROLES, "adjust scores")
    why = reason.strip()
    if not why:
        raise InvalidInput("a manual adjustment needs a reason", field="reason")
    if len(why) > MAX_REASON:
        raise InvalidInput(f"the reason can be at most {MAX_REASON} characters", field="reason")
    if (delta is None) == (set_to is None):
        raise InvalidInput("give either a change (+5, -10) or a new score", field="delta")
    if delta is not None and (delta == 0 or abs(delta) > 100_000):
        raise InvalidInput("the change must be a non-zero whole number", field="delta")
    if set_to is not None and abs(set_to) > 1_000_000:
        raise InvalidInput("the score must be between -1000000 and 1000000", field="score")
    await session.flush()
    config = await load_config(session, org_id)
    temperature = temperature_sql("o.lead_temperature", "o.score + :delta", config.thresholds)
    lead = (
        await session.execute(
            select(Lead.score).where(Lead.organization_id == org_id, Lead.id == lead_id).with_for_update()
        )
    ).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    change = delta if delta is not None else int(set_to or 0) - int(lead)
    rows: list[Any] = []
    if change != 0:
        rows = list(
            (
                await session.execute(
                    text(
                        f"""
WITH o AS (SELECT id, score, lead_temperature FROM leads WHERE organization_id = :org AND id = :lead),
upd AS (
  UPDATE leads l SET score = o.score + :delta, lead_temperature = {temperature},
         score_locked_at = CASE WHEN :lock THEN coalesce(l.score_locked_at, now()) ELSE l.score_locked_at END
  FROM o WHERE l.organization_id = :org AND l.id = o.id
  RETURNING l.id, o.score AS previous, l.score, o.lead_temperature AS previous_temperature,
            l.lead_temperature, l.assigned_to_id
),
hist AS (
  INSERT INTO lead_score_history
    (organization_id, lead_id, previous_score, new_score, score_change, reason, kind, changed_by)
  SELECT :org, id, previous, score, score - previous, :reason, 'manual', :actor FROM upd
)
SELECT * FROM upd"""
                    ),
                    {
                        "org": org_id,
                        "lead": lead_id,
                        "delta": change,
                        "lock": bool(lock),
                        "reason": f"manual: {why}",
                        "actor": actor.id,
                    },
                )
            ).all()
        )
    changes = await apply_rows(session, org_id, rows, alert_channel=config.alert_channel, actor_id=actor.id)
    if lock:
        await lock_score(session, org_id=org_id, lead_id=lead_id, actor=actor)
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=lead_id,
        activity_type="lead.score_adjusted",
        entity_type="lead",
        entity_id=lead_id,
        description=why,
        before={"score": int(lead)},
        after={"score": int(lead) + change, "locked": bool(lock)},
    )
    return changes[0] if changes else None


async def lock_score(session: AsyncSession, *, org_id: int, lead_id: int, actor: User) -> None:
    _require_role(actor, MANAGER_ROLES, "lock scores")
    result = await session.execute(
        update(Lead)
        .where(Lead.organization_id == org_id, Lead.id == lead_id, Lead.score_locked_at.is_(None))
        .values(score_locked_at=func.now())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        await record(
            session,
            org_id=org_id,
            actor_id=actor.id,
            lead_id=lead_id,
            activity_type="lead.score_locked",
            entity_type="lead",
            entity_id=lead_id,
        )


async def unlock_score(session: AsyncSession, *, org_id: int, lead_id: int, actor: User) -> list[ScoreChange]:
    """Unlock, and bring the score up to date with the rules (history rows for what changed meanwhile)."""
    _require_role(actor, MANAGER_ROLES, "unlock scores")
    result = await session.execute(
        update(Lead)
        .where(Lead.organization_id == org_id, Lead.id == lead_id, Lead.score_locked_at.is_not(None))
        .values(score_locked_at=None)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return []
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=lead_id,
        activity_type="lead.score_unlocked",
        entity_type="lead",
        entity_id=lead_id,
    )
    return await score_leads(session, org_id=org_id, lead_ids=[lead_id], reason="unlocked: ")
