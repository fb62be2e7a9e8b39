"""Reminders in PostgreSQL, the truth the Redis due queue is rebuilt from, and the states of a send.

A send is exactly-once because of three steps, each its own short transaction:

1. The intent is recorded under a row lock: status ``sending``, a ``send_key``, ``sending_since``. Nobody
   else sends a row that is ``sending`` and younger than :data:`SEND_TIMEOUT`. The dispatcher does it for
   a whole slice of a claim (:func:`lock_due`, then :func:`record_intents`: one UPDATE); reminders
   coalesced into one DM share the message's send key. :func:`begin_send` is the same step for one row.
2. The caller posts to Slack with the send key and the reminder ids in the message metadata.
3. :func:`finish_sent_many` marks the reminders of the posted messages sent (only those whose intent is
   still ours), one UPDATE per flush.

A process that dies between 1 and 3 leaves ``sending`` rows; once older than :data:`SEND_TIMEOUT`
:func:`lock_due` hands them out as a *recovery* under their key, and the caller first looks in the DM for
messages carrying that key: the reminders a found message lists are marked sent without a second post; the
others are posted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import BigInteger, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lma_bot.leads.service import get_lead
from lma_bot.models import Lead, Reminder, User
from lma_bot.queues import Later, Nothing

MAX_MESSAGE_LENGTH = 500
#: A Slack call (with its own retries) never takes longer than this; a ``sending`` row older than it is
#: recovered by another process.
SEND_TIMEOUT = dt.timedelta(seconds=60)
#: Transient failures are retried this many times in all, then the reminder fails.
MAX_ATTEMPTS = 6
ACTIVE = ("scheduled", "sending")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def create_reminder(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    user_id: int,
    created_by: int | None,
    due_at: dt.datetime,
    explicit_time: bool = True,
    message: str | None = None,
) -> Reminder:
    text = (message or "").strip() or None
    if text is not None and len(text) > MAX_MESSAGE_LENGTH:
        raise InvalidInput(
            f"a reminder message can be at most {MAX_MESSAGE_LENGTH} characters (this one has {len(text)})",
            field="message",
        )
    if due_at.tzinfo is None:
        raise InvalidInput("a reminder needs an aware due time", field="due_at")
    lead = await get_lead(session, org_id=org_id, lead_id=lead_id)
    reminder = Reminder(
        organization_id=org_id,
        lead_id=lead.id,
        user_id=user_id,
        created_by=created_by,
        due_at=due_at,
        explicit_time=explicit_time,
        message=text,
    )
    session.add(reminder)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=created_by,
        lead_id=lead.id,
        activity_type="reminder.created",
        entity_type="reminder",
        entity_id=reminder.id,
        after={"due_at": due_at.isoformat(), "user_id": user_id},
    )
    return reminder


async def get_reminder(
    session: AsyncSession, *, org_id: int, reminder_id: int, lock: bool = False
) -> Reminder:
    query = select(Reminder).where(Reminder.organization_id == org_id, Reminder.id == reminder_id)
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"reminder {reminder_id} not found")
    return found


async def get_reminders(session: AsyncSession, *, org_id: int, reminder_ids: list[int]) -> list[Reminder]:
    """The reminders of ``reminder_ids`` that exist (e.g. the rows of one coalesced DM)."""
    if not reminder_ids:
        return []
    rows = await session.execute(
        select(Reminder).where(Reminder.organization_id == org_id, Reminder.id.in_(reminder_ids))
    )
    return list(rows.scalars())


async def upcoming_for_user(
    session: AsyncSession, *, org_id: int, user_id: int, limit: int = 20
) -> list[tuple[Reminder, Lead]]:
    """A user's pending reminders (to them or set by them), soonest first."""
    rows = await session.execute(
        select(Reminder, Lead)
        .join(Lead, (Lead.organization_id == Reminder.organization_id) & (Lead.id == Reminder.lead_id))
        .where(
            Reminder.organization_id == org_id,
            Reminder.status.in_(ACTIVE),
            (Reminder.user_id == user_id) | (Reminder.created_by == user_id),
        )
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    return [(r, lead) for r, lead in rows.tuples()]


def _may_change(reminder: Reminder, actor: User) -> bool:
    return actor.role in ("admin", "manager") or actor.id in (reminder.user_id, reminder.created_by)


async def cancel(session: AsyncSession, *, org_id: int, reminder_id: int, actor: User) -> Reminder:
    reminder = await get_reminder(session, org_id=org_id, reminder_id=reminder_id, lock=True)
    if not _may_change(reminder, actor):
        raise PermissionDenied("only the person reminded, its creator or a manager can cancel a reminder")
    if reminder.status not in ACTIVE:
        raise Conflict(f"reminder {reminder_id} is already {reminder.status}")
    reminder.status = "cancelled"
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=reminder.lead_id,
        activity_type="reminder.cancelled",
        entity_type="reminder",
        entity_id=reminder.id,
        before={"status": "scheduled"},
        after={"status": "cancelled"},
    )
    return reminder


async def snooze(
    session: AsyncSession, *, org_id: int, reminder_id: int, actor: User, until: dt.datetime
) -> Reminder:
    """Deliver a reminder again at ``until`` (a sent one comes back; a pending one moves)."""
    reminder = await get_reminder(session, org_id=org_id, reminder_id=reminder_id, lock=True)
    if not _may_change(reminder, actor):
        raise PermissionDenied("only the person reminded, its creator or a manager can snooze a reminder")
    if reminder.status == "cancelled" or reminder.done_at is not None:
        raise Conflict(f"reminder {reminder_id} is {'done' if reminder.done_at else 'cancelled'}")
    if reminder.status == "sending":
        raise Conflict(f"reminder {reminder_id} is being delivered right now; try again in a moment")
    before = {"status": reminder.status, "due_at": reminder.due_at.isoformat()}
    reminder.status = "scheduled"
    reminder.due_at = until
    reminder.explicit_time = True
    reminder.send_key = None
    reminder.sending_since = None
    reminder.attempts = 0
    reminder.failure_reason = None
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=reminder.lead_id,
        activity_type="reminder.snoozed",
        entity_type="reminder",
        entity_id=reminder.id,
        before=before,
        after={"status": "scheduled", "due_at": until.isoformat()},
    )
    return reminder


async def mark_done(session: AsyncSession, *, org_id: int, reminder_id: int, actor: User) -> Reminder:
    reminder = await get_reminder(session, org_id=org_id, reminder_id=reminder_id, lock=True)
    if not _may_change(reminder, actor):
        raise PermissionDenied("only the person reminded, its creator or a manager can close a reminder")
    if reminder.done_at is None:
        reminder.done_at = _now()
        if reminder.status in ACTIVE:
            reminder.status = "cancelled"  # done before it was due: nothing left to deliver
        await record(
            session,
            org_id=org_id,
            actor_id=actor.id,
            lead_id=reminder.lead_id,
            activity_type="reminder.done",
            entity_type="reminder",
            entity_id=reminder.id,
        )
    return reminder


async def pending(
    session: AsyncSession, *, org_id: int, now: dt.datetime | None = None
) -> list[tuple[int, dt.datetime]]:
    """(id, due time) of every reminder of the organization still to deliver: what the queue must hold.

    A reminder being sent right now (an intent younger than SEND_TIMEOUT) is left out: its sender holds it,
    and putting it back would only leave a stale entry once it is sent. A stale intent (its sender died) is
    in, due when it may be recovered."""
    now = now or _now()
    rows = await session.execute(
        select(Reminder.id, Reminder.due_at, Reminder.sending_since).where(
            Reminder.organization_id == org_id, Reminder.status.in_(ACTIVE)
        )
    )
    out = []
    for rid, due_at, sending_since in rows.tuples():
        if sending_since is not None and sending_since + SEND_TIMEOUT > now:
            continue
        out.append((int(rid), due_at if sending_since is None else max(due_at, sending_since + SEND_TIMEOUT)))
    return out


# -- the states of a send ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """What the dispatcher must do with a claimed reminder."""

    reminder_id: int
    send_key: uuid.UUID
    recovering: bool  # a previous intent exists: look for its message before posting
    sending_since: dt.datetime
    attempt: int


async def begin_send(
    session: AsyncSession, *, org_id: int, reminder_id: int, now: dt.datetime | None = None
) -> Send | Later | Nothing:
    """Record the intent to send (or hand out a stale intent for recovery), under a row lock."""
    now = now or _now()
    reminder = (
        await session.execute(
            select(Reminder)
            .where(Reminder.organization_id == org_id, Reminder.id == reminder_id)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if reminder is None:
        # gone, or another process holds it this instant (its transaction is short): look again soon
        exists = (
            await session.execute(
                select(Reminder.id).where(Reminder.organization_id == org_id, Reminder.id == reminder_id)
            )
        ).scalar_one_or_none()
        return Later(now + dt.timedelta(seconds=1)) if exists is not None else Nothing("gone")
    if reminder.status not in ACTIVE:
        return Nothing(reminder.status)
    if reminder.status == "scheduled" or reminder.send_key is None or reminder.sending_since is None:
        if reminder.due_at > now + dt.timedelta(seconds=1):
            return Later(reminder.due_at)  # snoozed or moved after it was queued
        reminder.status = "sending"
        reminder.send_key = uuid.uuid4()
        reminder.sending_since = now
        reminder.attempts += 1
        return Send(reminder.id, reminder.send_key, False, now, reminder.attempts)
    if reminder.sending_since + SEND_TIMEOUT > now:
        return Later(reminder.sending_since + SEND_TIMEOUT)  # another process may still be sending it
    reminder.sending_since = now
    reminder.attempts += 1
    return Send(reminder.id, reminder.send_key, True, now, reminder.attempts)


async def finish_failed(
    session: AsyncSession, *, org_id: int, reminder_id: int, send_key: uuid.UUID, reason: str
) -> Reminder | None:
    """A permanent failure: no retry. None if the intent is no longer ours."""
    reminder = await get_reminder(session, org_id=org_id, reminder_id=reminder_id, lock=True)
    if reminder.status != "sending" or reminder.send_key != send_key:
        return None
    reminder.status = "failed"
    reminder.failure_reason = reason
    await record(
        session,
        org_id=org_id,
        actor_id=None,
        lead_id=reminder.lead_id,
        activity_type="reminder.failed",
        entity_type="reminder",
        entity_id=reminder.id,
        after={"reason": reason, "attempts": reminder.attempts},
    )
    return reminder


async def back_off(
    session: AsyncSession,
    *,
    org_id: int,
    reminder_id: int,
    send_key: uuid.UUID,
    reason: str,
    retry_at: dt.datetime,
) -> Reminder | None:
    """A transient failure: scheduled again for ``retry_at`` (the caller re-queues it, and a rebuilt queue
    keeps that time), or failed after MAX_ATTEMPTS."""
    reminder = await get_reminder(session, org_id=org_id, reminder_id=reminder_id, lock=True)
    if reminder.status != "sending" or reminder.send_key != send_key:
        return None
    if reminder.attempts >= MAX_ATTEMPTS:
        return await finish_failed(
            session,
            org_id=org_id,
            reminder_id=reminder_id,
            send_key=send_key,
            reason=f"gave up after {reminder.attempts} attempts: {reason}",
        )
    reminder.status = "scheduled"
    reminder.due_at = retry_at
    reminder.send_key = None
    reminder.sending_since = None
    reminder.failure_reason = reason
    return reminder


def backoff_delay(attempt: int) -> dt.timedelta:
    """5 s, 10 s, 20 s, 40 s, 80 s, capped at 5 minutes."""
    return dt.timedelta(seconds=min(300, 5 * 2 ** max(0, attempt - 1)))


# -- batches: many reminders, one statement per step ------------------------------------------------------
#
# The dispatcher claims hundreds of due reminders at once and coalesces the ones due for the same person into
# one DM (see handlers/jobs/reminders.py). The same three steps hold per reminder, batched: every reminder of a
# message gets the message's send key in ONE intent UPDATE, and one UPDATE marks a whole flush of messages
# sent. Recovery looks for a message carrying the key *and* the reminder's id.


@dataclass(frozen=True)
class Due:
    """A claimed reminder, locked for this transaction, with what its message needs."""

    reminder_id: int
    lead_id: int
    user_id: int | None
    created_by: int | None
    message: str | None
    due_at: dt.datetime
    explicit_time: bool
    send_key: uuid.UUID | None  # set: a stale intent to recover under this key
    attempts: int


def _any(ids: list[int]) -> Any:
    """``= ANY(:ids)`` with one array parameter: a claim's thousands of ids as one value, not an IN list of
    thousands of parameters to render, send and parse."""
    return any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))


@dataclass(frozen=True)
class Named:
    """Who a reminder names and about which lead (read without a lock, to plan a claim)."""

    user_id: int | None
    created_by: int | None
    lead_id: int


async def named_in(session: AsyncSession, *, org_id: int, reminder_ids: list[int]) -> dict[int, Named]:
    """reminder id -> who it reminds, who set it, its lead (no lock: to group a claim per person and load
    the people and leads once before locking it slice by slice)."""
    rows = await session.execute(
        select(Reminder.id, Reminder.user_id, Reminder.created_by, Reminder.lead_id).where(
            Reminder.organization_id == org_id, Reminder.id == _any(reminder_ids)
        )
    )
    return {int(rid): Named(uid, by, lead) for rid, uid, by, lead in rows.tuples()}


async def lock_due(
    session: AsyncSession, *, org_id: int, reminder_ids: list[int], now: dt.datetime
) -> tuple[list[Due], dict[int, Later | Nothing]]:
    """Lock the claimed reminders that are to be sent now; the others get what to do with their queue entry.

    One ``SELECT ... FOR UPDATE SKIP LOCKED`` for the whole batch: a row another transaction holds this
    instant is looked at again in a second (its transaction is short)."""
    rows = (
        await session.execute(
            select(
                Reminder.id,
                Reminder.lead_id,
                Reminder.user_id,
                Reminder.created_by,
                Reminder.message,
                Reminder.due_at,
                Reminder.explicit_time,
                Reminder.status,
                Reminder.send_key,
                Reminder.sending_since,
                Reminder.attempts,
            )
            .where(Reminder.organization_id == org_id, Reminder.id == _any(reminder_ids))
            .with_for_update(skip_locked=True)
        )
    ).all()
    due: list[Due] = []
    other: dict[int, Later | Nothing] = {}
    for rid, lead_id, user_id, created_by, message, due_at, explicit, status, key, since, attempts in rows:
        if status not in ACTIVE:
            other[rid] = Nothing(status)
        elif status == "scheduled" or key is None or since is None:
            if due_at > now + dt.timedelta(seconds=1):
                other[rid] = Later(due_at)  # snoozed or moved after it was queued
            else:
                due.append(Due(rid, lead_id, user_id, created_by, message, due_at, explicit, None, attempts))
        elif since + SEND_TIMEOUT > now:
            other[rid] = Later(since + SEND_TIMEOUT)  # another process may still be sending it
        else:
            due.append(Due(rid, lead_id, user_id, created_by, message, due_at, explicit, key, attempts))
    seen = {d.reminder_id for d in due} | other.keys()
    unseen = [rid for rid in reminder_ids if rid not in seen]
    if unseen:
        exist = set(
            (
                await session.execute(
                    select(Reminder.id).where(Reminder.organization_id == org_id, Reminder.id.in_(unseen))
                )
            ).scalars()
        )
        for rid in unseen:
            other[rid] = Later(now + dt.timedelta(seconds=1)) if rid in exist else Nothing("gone")
    return due, other


async def people_and_leads(
    session: AsyncSession, *, org_id: int, user_ids: set[int], lead_ids: set[int]
) -> tuple[dict[int, User], dict[int, Lead]]:
    """The users (recipients, creators) and leads a batch of reminders names, one query each."""
    return await _by_id(session, User, org_id, user_ids), await _by_id(session, Lead, org_id, lead_ids)


_Row = TypeVar("_Row", User, Lead)


async def _by_id(session: AsyncSession, model: type[_Row], org_id: int, ids: set[int]) -> dict[int, _Row]:
    if not ids:
        return {}
    rows = await session.execute(select(model).where(model.organization_id == org_id, model.id.in_(ids)))
    return {row.id: row for row in rows.scalars()}


async def record_intents(
    session: AsyncSession, *, org_id: int, keys: dict[int, uuid.UUID], now: dt.datetime
) -> dict[int, int]:
    """Record the send intent of every reminder in ``keys`` (reminder id -> its message's send key) in one
    UPDATE; rows must be locked by :func:`lock_due`. Returns reminder id -> attempt number."""
    if not keys:
        return {}
    ids = list(keys)
    rows = await session.execute(
        text(
            "UPDATE reminders AS r SET status = 'sending', send_key = v.key, sending_since = :now, "
            "attempts = r.attempts + 1, updated_at = now() "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS uuid[])) AS v(id, key) "
            "WHERE r.organization_id = :org AND r.id = v.id "
            "RETURNING r.id, r.attempts"
        ),
        {"org": org_id, "now": now, "ids": ids, "keys": [keys[i] for i in ids]},
    )
    return {int(rid): int(attempts) for rid, attempts in rows}


@dataclass(frozen=True)
class Posted:
    """A message Slack accepted: the reminders it carried, under its send key."""

    send_key: uuid.UUID
    reminder_ids: tuple[int, ...]
    channel: str
    ts: str


async def finish_sent_many(
    session: AsyncSession, *, org_id: int, posted: list[Posted], now: dt.datetime | None = None
) -> list[tuple[int, int]]:
    """Mark every reminder of ``posted`` sent, with one activity row each, in one statement; a reminder
    whose intent is no longer ours (cancelled, handed to a recovery) is left alone. Returns (reminder id,
    lead id) of those marked."""
    ids: list[int] = []
    keys: list[uuid.UUID] = []
    channels: list[str] = []
    stamps: list[str] = []
    for p in posted:
        for rid in p.reminder_ids:
            ids.append(rid)
            keys.append(p.send_key)
            channels.append(p.channel)
            stamps.append(p.ts)
    if not ids:
        return []
    rows = await session.execute(
        text(
            "WITH done AS ("
            " UPDATE reminders AS r SET status = 'sent', sent_at = :now, slack_channel = v.channel,"
            " slack_ts = v.ts, failure_reason = NULL, updated_at = now()"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS uuid[]), CAST(:channels AS text[]),"
            "  CAST(:stamps AS text[])) AS v(id, key, channel, ts)"
            " WHERE r.organization_id = :org AND r.id = v.id AND r.status = 'sending' AND r.send_key = v.key"
            " RETURNING r.id, r.lead_id, r.attempts, v.channel, v.ts"
            "), logged AS ("
            " INSERT INTO activity_logs (organization_id, lead_id, activity_type, entity_type, entity_id, after)"
            " SELECT :org, lead_id, 'reminder.sent', 'reminder', id,"
            "  jsonb_build_object('channel', channel, 'ts', ts, 'attempts', attempts) FROM done"
            ") SELECT id, lead_id FROM done"
        ),
        {
            "org": org_id,
            "now": now or _now(),
            "ids": ids,
            "keys": keys,
            "channels": channels,
            "stamps": stamps,
        },
    )
    return [(int(rid), int(lead_id)) for rid, lead_id in rows]


async def finish_failed_many(
    session: AsyncSession, *, org_id: int, reminder_ids: list[int], send_key: uuid.UUID, reason: str
) -> list[Reminder]:
    """:func:`finish_failed` for the reminders of one message; returns those failed (still ours)."""
    failed = []
    for rid in sorted(reminder_ids):  # a permanent failure is rare: the per-row verb, in id order
        row = await finish_failed(session, org_id=org_id, reminder_id=rid, send_key=send_key, reason=reason)
        if row is not None:
            failed.append(row)
    return failed


async def back_off_many(
    session: AsyncSession,
    *,
    org_id: int,
    reminder_ids: list[int],
    send_key: uuid.UUID,
    reason: str,
    retry_at: dt.datetime,
) -> list[Reminder]:
    """:func:`back_off` for the reminders of one message; returns the rows still ours (scheduled or failed)."""
    rows = []
    for rid in sorted(reminder_ids):
        row = await back_off(
            session, org_id=org_id, reminder_id=rid, send_key=send_key, reason=reason, retry_at=retry_at
        )
        if row is not None:
            rows.append(row)
    return rows
