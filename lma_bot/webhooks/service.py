"""Durable, idempotent ingest: store every delivery, then process it.

``ingest`` inserts the events with ``INSERT ... ON CONFLICT DO NOTHING`` (unique provider event id per
integration), processes each new one inside a savepoint, and records the outcome on its row. A processing
failure rolls back only that event's savepoint and is recorded (status ``failed``, the error), so the
delivery is still stored and answered 2xx after the caller's commit, and ``replay`` can run it again.

``store_many`` is the group-commit form (see :mod:`lma_bot.webhooks.batcher`): the events of many deliveries
of one organization in one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING``; their processing
may then run in the same transaction (``run_event``) or later, from rows left ``received``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import TENANT_SETTING
from lma_bot.errors import DomainError, NotFound
from lma_bot.models import WebhookEvent
from lma_bot.webhooks.types import WebhookAuthError

log = logging.getLogger(__name__)

MAX_ERROR = 2000


@dataclass(frozen=True)
class Incoming:
    event_type: str
    provider_event_id: str
    payload: dict[str, Any]
    nonce: str | None = None
    #: ``payload`` as JSON text when the sender's body is exactly that document (stored as is, not re-encoded).
    raw: str | None = None

    def payload_json(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.payload)


@dataclass
class Outcome:
    status: Literal["processed", "ignored"]
    lead_ids: set[int] = field(default_factory=set)
    note: str | None = None  # why an event was ignored


#: Runs one stored event: ``(session, org_id, event) -> Outcome``; raises DomainError for a recorded failure.
Processor = Callable[[AsyncSession, int, WebhookEvent], Awaitable[Outcome]]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    lead_ids: set[int] = field(default_factory=set)
    event_ids: list[int] = field(default_factory=list)
    received: int = 0  # stored, processing deferred (status ``received``; processed shortly after the answer)
    retry_ids: list[int] = field(
        default_factory=list
    )  # hit a transient conflict: left ``received``, to retry

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "processed": self.processed,
            "ignored": self.ignored,
            "failed": self.failed,
            "event_ids": self.event_ids[:100],
        }
        if self.received:
            body["received"] = self.received
        if self.errors:
            body["errors"] = self.errors[:20]
        return body


class NonceReused(WebhookAuthError):
    """A Mailgun token seen before with another event: a replayed signature."""


async def ingest(
    session: AsyncSession,
    *,
    org_id: int,
    integration_id: int,
    provider: str,
    events: list[Incoming],
    processor: Processor,
) -> IngestResult:
    result = IngestResult()
    unique = list({e.provider_event_id: e for e in events}.values())
    result.duplicates = len(events) - len(unique)
    if not unique:
        return result
    nonces = [e.nonce for e in unique if e.nonce]
    if nonces:
        await _check_nonces(session, org_id, integration_id, unique)
    rows = [
        {
            "organization_id": org_id,
            "integration_id": integration_id,
            "provider": provider,
            "event_type": e.event_type[:100],
            "provider_event_id": e.provider_event_id[:255],
            "nonce": e.nonce,
            "payload": e.payload,
        }
        for e in unique
    ]
    stmt = pg_insert(WebhookEvent).values(rows).on_conflict_do_nothing().returning(WebhookEvent)
    stored = list((await session.scalars(stmt)).all())
    if nonces and not stored:
        # Lost a race with a concurrent request carrying the same nonce: same event -> duplicate, else replay.
        await _check_nonces(session, org_id, integration_id, unique)
    result.duplicates += len(unique) - len(stored)
    result.accepted = len(stored)
    result.event_ids.extend(event.id for event in stored)
    await process_many(session, org_id=org_id, events=stored, processor_of=lambda _: processor, result=result)
    return result


@dataclass
class Delivery:
    """One request's events, for :func:`store_many`."""

    integration_id: int
    provider: str
    events: list[Incoming]


@dataclass
class Stored:
    """What :func:`store_many` did with one delivery: its result so far and its new rows' ids, in order; or
    ``error`` (a :class:`NonceReused`) when it must be refused."""

    result: IngestResult = field(default_factory=IngestResult)
    new_ids: list[int] = field(default_factory=list)
    error: WebhookAuthError | None = None


_COLUMNS = (
    "INSERT INTO webhook_events "
    "(organization_id, integration_id, provider, event_type, provider_event_id, nonce, payload) "
)
_STORE_MANY = text(
    _COLUMNS
    + "SELECT CAST(:org AS integer), u.integration_id, u.provider, u.event_type, u.provider_event_id, u.nonce, "
    "CAST(u.payload AS jsonb) "
    "FROM unnest(CAST(:integration_ids AS integer[]), CAST(:providers AS varchar[]), "
    "CAST(:event_types AS varchar[]), CAST(:event_ids AS varchar[]), CAST(:nonces AS varchar[]), "
    "CAST(:payloads AS text[])) "
    "WITH ORDINALITY AS u(integration_id, provider, event_type, provider_event_id, nonce, payload, n) "
    "ORDER BY u.n "
    "ON CONFLICT DO NOTHING "
    "RETURNING id, integration_id, provider_event_id"
)
#: The same statement for a bare asyncpg connection (positional parameters), see :func:`store_many_driver`.
#: It sets the tenant itself: ``tenant`` (``set_config(..., true)``, volatile, so a materialized CTE) is joined
#: into the rows' source and the rows pass a sort before the insert, so it runs before the first row meets
#: the row-level security check. Alone, outside ``BEGIN``, it is one statement, one round trip, committed
#: before its answer (autocommit); in a transaction the setting lasts until its end, as ``uow``'s does.
STORE_MANY_DRIVER_SQL = (
    f"WITH tenant AS (SELECT set_config('{TENANT_SETTING}', ($1::integer)::text, true)) "
    + _COLUMNS
    + "SELECT $1::integer, u.integration_id, u.provider, u.event_type, u.provider_event_id, u.nonce, "
    "u.payload::jsonb "
    "FROM tenant, "
    "unnest($2::integer[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::text[]) "
    "WITH ORDINALITY AS u(integration_id, provider, event_type, provider_event_id, nonce, payload, n) "
    "ORDER BY u.n "
    "ON CONFLICT DO NOTHING "
    "RETURNING id, integration_id, provider_event_id"
)

#: One event to insert: (index of its delivery, provider, the event).
_Row = tuple[int, str, Incoming]


def _claim_rows(deliveries: list[Delivery], outcomes: list[Stored], skip: set[int]) -> list[_Row]:
    """The events to insert, each (integration, event id) once: a copy, in its delivery or in another one of
    the batch, counts as a duplicate of the delivery that sent it. Deliveries in ``skip`` (refused) add none."""
    claimed: set[tuple[int, str]] = set()
    rows: list[_Row] = []
    for index, (delivery, stored) in enumerate(zip(deliveries, outcomes, strict=True)):
        if index in skip:
            continue
        unique = list({e.provider_event_id[:255]: e for e in delivery.events}.values())
        stored.result.duplicates = len(delivery.events) - len(unique)
        for event in unique:
            key = (delivery.integration_id, event.provider_event_id[:255])
            if key in claimed:
                stored.result.duplicates += 1
                continue
            claimed.add(key)
            rows.append((index, delivery.provider, event))
    return rows


def _columns(deliveries: list[Delivery], rows: list[_Row]) -> list[list[Any]]:
    return [
        [deliveries[i].integration_id for i, _, _ in rows],
        [p for _, p, _ in rows],
        [e.event_type[:100] for _, _, e in rows],
        [e.provider_event_id[:255] for _, _, e in rows],
        [e.nonce for _, _, e in rows],
        [e.payload_json() for _, _, e in rows],
    ]


def _assign(
    returned: dict[tuple[int, str], int], deliveries: list[Delivery], rows: list[_Row], outcomes: list[Stored]
) -> None:
    for index, _, event in rows:
        event_id = returned.get((deliveries[index].integration_id, event.provider_event_id[:255]))
        stored = outcomes[index]
        if event_id is None:
            stored.result.duplicates += 1
        else:
            stored.new_ids.append(event_id)
            stored.result.event_ids.append(event_id)
            stored.result.accepted += 1


async def store_many(session: AsyncSession, *, org_id: int, deliveries: list[Delivery]) -> list[Stored]:
    """Store the events of several deliveries of organization ``org_id`` with one statement (the caller has
    set the tenant and commits). A duplicate, within the batch or already stored, is counted as such on the
    delivery that did not get it stored; a Mailgun token seen with another event refuses its delivery."""
    outcomes = [Stored() for _ in deliveries]
    nonce_owner: dict[tuple[int, str], str] = {}  # (integration, nonce) -> event id it was sent with
    with_nonces: list[int] = []
    refused: set[int] = set()
    for index, (delivery, stored) in enumerate(zip(deliveries, outcomes, strict=True)):
        unique = list({e.provider_event_id[:255]: e for e in delivery.events}.values())
        if any(e.nonce for e in unique):
            try:
                _claim_nonces(nonce_owner, delivery.integration_id, unique, register=False)
                await _check_nonces(session, org_id, delivery.integration_id, unique)
                _claim_nonces(nonce_owner, delivery.integration_id, unique, register=True)
            except NonceReused as exc:  # a refused delivery claims nothing
                stored.error = exc
                refused.add(index)
                continue
            with_nonces.append(index)
    rows = _claim_rows(deliveries, outcomes, refused)
    if not rows:
        return outcomes
    names = ("integration_ids", "providers", "event_types", "event_ids", "nonces", "payloads")
    params = {"org": org_id, **dict(zip(names, _columns(deliveries, rows), strict=True))}
    returned = {(int(r[1]), str(r[2])): int(r[0]) for r in await session.execute(_STORE_MANY, params)}
    _assign(returned, deliveries, rows, outcomes)
    for index in with_nonces:
        stored = outcomes[index]
        if not stored.new_ids:
            # Lost a race with a concurrent request carrying the same nonce: same event -> duplicate, else replay.
            try:
                await _check_nonces(
                    session, org_id, deliveries[index].integration_id, deliveries[index].events
                )
            except NonceReused as exc:
                stored.error = exc
    return outcomes


class Fetch(Protocol):
    """``asyncpg.Connection.fetch``: the statement, its positional arguments, the rows."""

    async def __call__(self, query: str, *args: Any) -> list[Any]: ...


async def store_many_driver(fetch: Fetch, *, org_id: int, deliveries: list[Delivery]) -> list[Stored]:
    """:func:`store_many` on a bare asyncpg connection (``fetch`` is its method), for deliveries that carry
    no nonce (nothing to look up first): the busy gateway's path, without the ORM's per-statement overhead.
    The statement sets the tenant ``org_id`` itself; outside a transaction it commits on its own."""
    if any(e.nonce for d in deliveries for e in d.events):
        raise ValueError("store_many_driver takes no deliveries with nonces; use store_many")
    outcomes = [Stored() for _ in deliveries]
    rows = _claim_rows(deliveries, outcomes, set())
    if rows:
        records = await fetch(STORE_MANY_DRIVER_SQL, org_id, *_columns(deliveries, rows))
        returned = {(int(r[1]), str(r[2])): int(r[0]) for r in records}
        _assign(returned, deliveries, rows, outcomes)
    return outcomes


def _claim_nonces(
    owner: dict[tuple[int, str], str], integration_id: int, events: list[Incoming], *, register: bool
) -> None:
    """Refuse a nonce another delivery of the same batch sent with another event; ``register``: claim them."""
    for event in events:
        if event.nonce:
            seen = owner.get((integration_id, event.nonce))
            if seen is not None and seen != event.provider_event_id[:255]:
                raise NonceReused("signature token already used for another event")
    if not register:
        return
    for event in events:
        if event.nonce:
            owner.setdefault((integration_id, event.nonce), event.provider_event_id[:255])


async def load_events(session: AsyncSession, *, org_id: int, event_ids: list[int]) -> list[WebhookEvent]:
    """The stored events with these ids, in id order (the caller's transaction inserted them)."""
    if not event_ids:
        return []
    rows = await session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.organization_id == org_id, WebhookEvent.id.in_(event_ids))
        .order_by(WebhookEvent.id)
    )
    return list(rows.all())


async def claim_received(
    session: AsyncSession,
    *,
    org_id: int,
    event_ids: list[int] | None = None,
    older_than: dt.timedelta | None = None,
    limit: int = 200,
) -> list[WebhookEvent]:
    """Lock stored events still ``received`` (these ids, or any older than ``older_than``) for processing.

    ``FOR UPDATE SKIP LOCKED``: another process (or this one's worker) already processing a row keeps it;
    a row processed meanwhile no longer matches ``status = 'received'`` once its lock is released.
    """
    stmt = select(WebhookEvent).where(
        WebhookEvent.organization_id == org_id, WebhookEvent.status == "received"
    )
    if event_ids is not None:
        stmt = stmt.where(WebhookEvent.id.in_(event_ids))
    if older_than is not None:
        stmt = stmt.where(WebhookEvent.received_at < dt.datetime.now(dt.UTC) - older_than)
    stmt = stmt.order_by(WebhookEvent.id).limit(limit).with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


async def _check_nonces(
    session: AsyncSession, org_id: int, integration_id: int, events: list[Incoming]
) -> None:
    for incoming in events:
        if not incoming.nonce:
            continue
        seen = await session.scalar(
            select(WebhookEvent.provider_event_id).where(
                WebhookEvent.organization_id == org_id,
                WebhookEvent.integration_id == integration_id,
                WebhookEvent.nonce == incoming.nonce,
            )
        )
        if seen is not None and seen != incoming.provider_event_id[:255]:
            raise NonceReused("signature token already used for another event")


#: ``(event id, status, error)`` of processed events, written by :func:`record_outcomes`.
Outcomes = list[tuple[int, str, str | None]]

_RECORD_OUTCOMES = text(
    "UPDATE webhook_events AS w SET status = u.status, error = u.error, attempts = w.attempts + 1, "
    "processed_at = now() "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS varchar[]), CAST(:errors AS text[])) "
    "AS u(id, status, error) "
    "WHERE w.organization_id = :org AND w.id = u.id"
)


async def run_event(
    session: AsyncSession,
    *,
    org_id: int,
    event: WebhookEvent,
    processor: Processor,
    result: IngestResult,
    outcomes: Outcomes | None = None,
) -> None:
    """Process one stored event in a savepoint and record its outcome on the row (or in ``outcomes``, for the
    caller to write with one :func:`record_outcomes` for the whole batch)."""
    status: str
    error: str | None
    try:
        async with session.begin_nested():
            outcome = await processor(session, org_id, event)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the database went away: nothing is stored, the sender retries (503)
        if transient(exc):  # a deadlock or serialization failure says nothing about the event: try again
            log.info(
                "webhook.retry event=%s provider=%s error=%s", event.id, event.provider, _error_text(exc)
            )
            result.retry_ids.append(event.id)
            result.received += 1
            return
        status, error = "failed", _error_text(exc)
        log.warning("webhook.failed event=%s provider=%s error=%s", event.id, event.provider, error)
    except DomainError as exc:
        status, error = "failed", str(exc)[:MAX_ERROR]
        log.info("webhook.rejected event=%s provider=%s error=%s", event.id, event.provider, exc)
    except Exception as exc:  # a bug in processing must not lose the delivery
        log.exception("webhook.crashed event=%s provider=%s", event.id, event.provider)
        status, error = "failed", f"internal error ({type(exc).__name__})"
    else:
        status, error = outcome.status, outcome.note
        result.lead_ids |= outcome.lead_ids
    if status == "failed":
        result.failed += 1
        result.errors.append({"event_id": event.id, "error": error})
    elif status == "ignored":
        result.ignored += 1
    else:
        result.processed += 1
    if outcomes is not None:
        outcomes.append((event.id, status, error))
    else:
        await record_outcomes(session, org_id=org_id, outcomes=[(event.id, status, error)])


async def process_many(
    session: AsyncSession,
    *,
    org_id: int,
    events: list[WebhookEvent],
    processor_of: Callable[[WebhookEvent], Processor],
    result: IngestResult,
) -> None:
    """Process stored events and record their outcomes; a failing event fails no other.

    Optimistic: all events in one savepoint (2 statements for the batch instead of 2 per event). If any of them
    raises, that savepoint is rolled back, undoing the whole batch's effects, and every event is run again in
    its own savepoint (:func:`run_event`), which is where failures are recorded and logged.
    """
    outcomes: Outcomes = []
    if len(events) > 1:
        trial = IngestResult()
        try:
            async with session.begin_nested():
                for event in events:
                    outcome = await processor_of(event)(session, org_id, event)
                    outcomes.append((event.id, outcome.status, outcome.note))
                    trial.lead_ids |= outcome.lead_ids
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            outcomes.clear()
        except Exception:
            outcomes.clear()
        else:
            result.lead_ids |= trial.lead_ids
            result.processed += sum(1 for _, status, _ in outcomes if status == "processed")
            result.ignored += sum(1 for _, status, _ in outcomes if status == "ignored")
    if not outcomes:
        for event in events:
            await run_event(
                session,
                org_id=org_id,
                event=event,
                processor=processor_of(event),
                result=result,
                outcomes=outcomes,
            )
    await record_outcomes(session, org_id=org_id, outcomes=outcomes)


async def record_outcomes(session: AsyncSession, *, org_id: int, outcomes: Outcomes) -> None:
    """Write processed events' status and error, count the attempt (one statement for the batch)."""
    if outcomes:
        await session.execute(
            _RECORD_OUTCOMES,
            {
                "org": org_id,
                "ids": [i for i, _, _ in outcomes],
                "statuses": [s for _, s, _ in outcomes],
                "errors": [e for _, _, e in outcomes],
            },
        )


TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock not available


def transient(exc: DBAPIError) -> bool:
    """A conflict with a concurrent transaction, gone if the same work is run again."""
    return getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


def _error_text(exc: DBAPIError) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return (lines[0] if lines else type(original).__name__)[:MAX_ERROR]


async def get_event(session: AsyncSession, *, org_id: int, event_id: int) -> WebhookEvent:
    event = await session.get(WebhookEvent, (org_id, event_id))
    if event is None:
        raise NotFound(f"webhook event {event_id} not found")
    return event


async def replay(session: AsyncSession, *, org_id: int, event_id: int, processor: Processor) -> IngestResult:
    """Process a stored event again (after a fix, or a lead that now exists); a processed one is left alone.

    The row is locked first, so a replay and the deferred-processing worker never run the same event at once:
    whichever comes second sees the first one's outcome."""
    event = await session.scalar(
        select(WebhookEvent)
        .where(WebhookEvent.organization_id == org_id, WebhookEvent.id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if event is None:
        raise NotFound(f"webhook event {event_id} not found")
    result = IngestResult(event_ids=[event.id])
    if event.status == "processed":
        result.duplicates = 1
        return result
    await run_event(session, org_id=org_id, event=event, processor=processor, result=result)
    return result
