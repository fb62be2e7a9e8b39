"""The scoring engine: record a lead's events (deduplicated), and bring a lead's score up to date with the
organization's rules, in the caller's transaction.

Every point change is a ``lead_score_history`` row (previous, new, delta, rule or kind, triggering event,
reason; for rule changes ``rule_deltas``, each moved rule's delta, one row per lead and scoring) and moves
``leads.score`` by exactly its delta, so ``leads.score`` always equals the sum of the lead's history deltas
(leads start at 0). What each rule currently gives the lead is kept in ``leads.rule_points`` (the `/lead
score` breakdown); each rule's entry equals the sum of its ``rule_deltas``. Scoring a lead recomputes all its rule contributions with
the same SQL that ``lma-bot rescore`` runs for the whole organization (:mod:`lma_bot.scoring.compile`), and
writes only the differences: it is idempotent, and a late or out-of-order event scores as if it had come in
order.

After the commit, :mod:`lma_bot.scoring.publish` refreshes ``lead_score:{id}``, drops the cached card
``lead:{id}`` and raises hot-lead alerts, from the :class:`ScoreChange` list noted on the session.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import TextClause, event, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, attributes

from lma_bot.models import Lead, LeadEvent, LeadScoringRule, Organization
from lma_bot.scoring.compile import apply_sql
from lma_bot.scoring.rules import Rule, parse_criteria
from lma_bot.scoring.temperature import Thresholds

log = logging.getLogger(__name__)

#: ``session.info`` key: the :class:`ScoreChange` list published after the commit.
SCORE_OUTBOX_KEY = "lma.score_changes"

#: Events that are the lead engaging (they reset the decay clock, like an email open does).
NOT_ENGAGEMENT = frozenset(
    {
        "note_added",
        "status_changed",
        "email_sent",
        "email_delivered",
        "email_bounced",
        "email_complained",
        "email_unsubscribed",
    }
)


@dataclass(frozen=True)
class ScoreChange:
    """A committed-to-be change of one lead's score (published after the commit)."""

    org_id: int
    lead_id: int
    previous: int
    score: int
    previous_temperature: str
    temperature: str
    owner_id: int | None
    alert_channel: str | None = None

    @property
    def became_hot(self) -> bool:
        """The lead crossed into hot: one alert to its owner (or the org's alert channel)."""
        return self.temperature == "hot" and self.previous_temperature != "hot"


@dataclass(frozen=True)
class ScoringConfig:
    rules: list[Rule]
    thresholds: Thresholds
    alert_channel: str | None
    names: dict[int, str] = field(default_factory=dict)  # every rule's name (active or not), by id


#: ``pg_advisory_xact_lock(SCORING_LOCK, org_id)``: held exclusively by a rescore of the organization, shared
#: (when free) by incremental scoring, so a rescore starts only after the scorers already running committed.
SCORING_LOCK = 7272


async def try_share_scoring_lock(session: AsyncSession, org_id: int) -> bool:
    """Share the organization's scoring lock if no rescore holds (or waits for) it. Never waits: a scorer
    that already holds lead row locks must not wait for a rescore that waits for those rows. A scorer that
    runs during a rescore loads the rules after the rule change that started it, and the rescore leaves
    alone the leads it scored (``rule_points`` changed under it)."""
    return bool(
        (
            await session.execute(
                text("SELECT pg_try_advisory_xact_lock_shared(:k, :org)"), {"k": SCORING_LOCK, "org": org_id}
            )
        ).scalar_one()
    )


async def take_scoring_lock(session: AsyncSession, org_id: int) -> None:
    """The rescore's exclusive hold of the organization's scoring lock (until the transaction ends)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k, :org)"), {"k": SCORING_LOCK, "org": org_id})


def rule_from_row(row: LeadScoringRule) -> Rule:
    return Rule(
        id=row.id,
        name=row.name,
        points=row.score_points,
        criteria=parse_criteria(row.criteria),
        repeat_policy=row.repeat_policy,
        repeat_limit=row.repeat_limit,
        priority=row.priority,
        is_active=row.is_active,
    )


async def load_config(session: AsyncSession, org_id: int) -> ScoringConfig:
    rows = (
        await session.execute(
            select(LeadScoringRule)
            .where(LeadScoringRule.organization_id == org_id, LeadScoringRule.is_active.is_(True))
            .order_by(LeadScoringRule.priority.desc(), LeadScoringRule.id)
        )
    ).scalars()
    names = {
        int(r[0]): str(r[1])
        for r in await session.execute(
            select(LeadScoringRule.id, LeadScoringRule.name).where(LeadScoringRule.organization_id == org_id)
        )
    }
    org = await session.get(Organization, org_id)
    settings = org.settings if org is not None else {}
    channel = ((settings or {}).get("scoring") or {}).get("hot_alert_channel")
    return ScoringConfig(
        rules=[rule_from_row(r) for r in rows],
        thresholds=Thresholds.from_settings(settings),
        alert_channel=channel if isinstance(channel, str) and channel else None,
        names=names,
    )


def note_changes(session: AsyncSession, changes: Sequence[ScoreChange]) -> None:
    if changes:
        session.info.setdefault(SCORE_OUTBOX_KEY, []).extend(changes)


_MARKS_KEY = "lma.score_changes_marks"


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks: dict[int, int] = session.info.setdefault(_MARKS_KEY, {})
        marks[id(transaction)] = len(session.info.get(SCORE_OUTBOX_KEY) or [])


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """A savepoint rolled back: forget the changes noted inside it (a full rollback forgets them all)."""
    session.info.pop(_LOADED_KEY, None)  # the rules it loaded may have been written inside it
    if not previous_transaction.nested:
        session.info.pop(SCORE_OUTBOX_KEY, None)
        session.info.pop(_MARKS_KEY, None)
        return
    mark = (session.info.get(_MARKS_KEY) or {}).pop(id(previous_transaction), None)
    outbox = session.info.get(SCORE_OUTBOX_KEY)
    if mark is not None and outbox is not None:
        del outbox[mark:]


def _after_commit(session: Session) -> None:
    session.info.pop(_MARKS_KEY, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction (not a savepoint) ended: its snapshot too
        session.info.pop(_LOADED_KEY, None)


def _after_flush(session: Session, flush_context: Any) -> None:
    """A rule or an organization (thresholds, alert channel) written: load the configuration again."""
    if _LOADED_KEY in session.info and any(
        isinstance(obj, LeadScoringRule | Organization)
        for obj in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info.pop(_LOADED_KEY, None)


# Session-wide bookkeeping of the noted changes across savepoints (no connection, no I/O).
for _name, _fn in (
    ("after_transaction_create", _after_transaction_create),
    ("after_soft_rollback", _after_soft_rollback),
    ("after_commit", _after_commit),
    ("after_flush", _after_flush),
    ("after_transaction_end", _after_transaction_end),
):
    if not event.contains(Session, _name, _fn):
        event.listen(Session, _name, _fn)


def take_changes(session: AsyncSession) -> list[ScoreChange]:
    """The changes noted on ``session`` (removed from it): for callers that publish themselves."""
    changes: list[ScoreChange] = session.info.pop(SCORE_OUTBOX_KEY, None) or []
    return changes


def _sync_loaded(session: AsyncSession, org_id: int, lead_id: int, score: int, temperature: str) -> None:
    """Make an already loaded ``Lead`` show the new score without a lazy load (async sessions can't)."""
    key = session.sync_session.identity_map.get(session.sync_session.identity_key(Lead, (org_id, lead_id)))
    if isinstance(key, Lead):
        attributes.set_committed_value(key, "score", score)
        attributes.set_committed_value(key, "lead_temperature", temperature)


async def lock_leads(session: AsyncSession, org_id: int, lead_ids: Sequence[int]) -> None:
    await session.execute(
        select(Lead.id)
        .where(Lead.organization_id == org_id, Lead.id.in_(sorted(set(lead_ids))))
        .order_by(Lead.id)
        .with_for_update()
    )


async def apply_rows(
    session: AsyncSession,
    org_id: int,
    rows: Sequence[Any],
    *,
    alert_channel: str | None,
    actor_id: int | None = None,
    fire_workflows: bool = True,
) -> list[ScoreChange]:
    """Turn the ``RETURNING`` rows of a score update into :class:`ScoreChange` (noted for publishing); fires
    ``score_threshold`` workflows for scores that went up."""
    changes = [
        ScoreChange(
            org_id=org_id,
            lead_id=int(r[0]),
            previous=int(r[1]),
            score=int(r[2]),
            previous_temperature=str(r[3]),
            temperature=str(r[4]),
            owner_id=r[5],
            alert_channel=alert_channel,
        )
        for r in rows
    ]
    if len(session.sync_session.identity_map):  # nothing loaded (a rescore): nothing to refresh
        for change in changes:
            _sync_loaded(session, org_id, change.lead_id, change.score, change.temperature)
    note_changes(session, changes)
    if fire_workflows:
        # imported here: the workflow service (and its HTTP client) is not needed by a rescore, whose
        # process start-up is part of its time
        from lma_bot.workflows import service as workflows

        for change in changes:
            if change.score > change.previous:
                lead = await session.get(Lead, (org_id, change.lead_id))
                if lead is not None:
                    await workflows.score_changed(
                        session, org_id=org_id, lead=lead, previous_score=change.previous, actor_id=actor_id
                    )
    return changes


@dataclass
class _Loaded:
    """An organization's scoring configuration as one transaction sees it, with its compiled statements."""

    config: ScoringConfig
    statements: dict[str, tuple[TextClause, dict[str, Any]]] = field(default_factory=dict)  # by reason


#: ``session.info`` key: organization id -> :class:`_Loaded`, for the rest of the transaction (a batch of
#: webhook events scores each one with the rules loaded and compiled once). Dropped when the session flushes
#: a rule or an organization, when a savepoint rolls back, and when a rescore holds or waits for the
#: scoring lock (so a scorer running then reads the rules after the change that started it).
_LOADED_KEY = "lma.scoring_loaded"


def forget_loaded(session: Session | AsyncSession) -> None:
    session.info.pop(_LOADED_KEY, None)


async def _loaded(session: AsyncSession, org_id: int, *, fresh: bool) -> _Loaded:
    cache: dict[int, _Loaded] = session.info.setdefault(_LOADED_KEY, {})
    loaded = None if fresh else cache.get(org_id)
    if loaded is None:
        loaded = cache[org_id] = _Loaded(await load_config(session, org_id))
    return loaded


def _statement(loaded: _Loaded, reason: str) -> tuple[TextClause, dict[str, Any]]:
    statement = loaded.statements.get(reason)
    if statement is None:
        config = loaded.config
        compiled = apply_sql(
            config.rules, config.thresholds, scope="ids", reason_prefix=reason, names=config.names
        )
        statement = loaded.statements[reason] = (text(compiled.sql), compiled.params)
    return statement


async def score_leads(
    session: AsyncSession,
    *,
    org_id: int,
    lead_ids: Sequence[int],
    event_id: int | None = None,
    reason: str = "",
    config: ScoringConfig | None = None,
) -> list[ScoreChange]:
    """Bring ``lead_ids`` up to date with the organization's active rules (locked and deleted leads are left
    alone). ``reason`` prefixes the history rows' reasons; ``event_id`` is the triggering ``lead_events`` row.
    ``config``: rules to use instead of the organization's (loaded once per transaction, see ``_LOADED_KEY``)."""
    if not lead_ids:
        return []
    await session.flush()
    shared = await try_share_scoring_lock(session, org_id)
    await lock_leads(session, org_id, lead_ids)
    loaded = _Loaded(config) if config is not None else await _loaded(session, org_id, fresh=not shared)
    statement, compiled_params = _statement(loaded, reason)
    params = {**compiled_params, "org": org_id, "event_id": event_id, "lead_ids": list(lead_ids)}
    config = loaded.config
    rows = (await session.execute(statement, params)).all()
    changes = await apply_rows(session, org_id, rows, alert_channel=config.alert_channel)
    if changes:
        log.info(
            "scoring.changed org=%s leads=%s event_id=%s",
            org_id,
            ",".join(f"{c.lead_id}:{c.previous}->{c.score}" for c in changes),
            event_id,
        )
    return changes


async def record_event(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    event_type: str,
    dedupe_key: str,
    occurred_at: dt.datetime | None = None,
    properties: dict[str, Any] | None = None,
) -> tuple[int | None, list[ScoreChange]]:
    """Store an event of a lead and score it, once: a second delivery with the same ``dedupe_key`` changes
    nothing and returns ``(None, [])``. Returns the event id and the score changes."""
    when = occurred_at or dt.datetime.now(dt.UTC)
    stmt = (
        pg_insert(LeadEvent)
        .values(
            organization_id=org_id,
            lead_id=lead_id,
            event_type=event_type[:100],
            occurred_at=when,
            dedupe_key=dedupe_key[:200],
            properties=properties or {},
        )
        .on_conflict_do_nothing(index_elements=[LeadEvent.organization_id, LeadEvent.dedupe_key])
        .returning(LeadEvent.id)
    )
    event_id = (await session.execute(stmt)).scalar_one_or_none()
    if event_id is None:
        log.info("scoring.duplicate_event org=%s lead_id=%s key=%s", org_id, lead_id, dedupe_key)
        return None, []
    if event_type not in NOT_ENGAGEMENT:
        lead = await session.get(Lead, (org_id, lead_id))
        if lead is not None and (lead.last_engagement_date is None or lead.last_engagement_date < when):
            lead.last_engagement_date = when
    changes = await score_leads(
        session, org_id=org_id, lead_ids=[lead_id], event_id=event_id, reason=f"{event_type[:60]}: "
    )
    return event_id, changes


async def lead_changed(session: AsyncSession, *, org_id: int, lead_id: int) -> list[ScoreChange]:
    """A lead was created or its fields changed: its state rules (and field parts of event rules) again."""
    return await score_leads(session, org_id=org_id, lead_ids=[lead_id], reason="lead changed: ")
