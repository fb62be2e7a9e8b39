"""Durable, idempotent ingest: store every delivery, then process it, in one transaction.

``ingest`` inserts the events with ``INSERT ... ON CONFLICT DO NOTHING`` (unique provider event id per
integration), processes each new one inside a savepoint, and records the outcome on its row. A processing
failure rolls back only that event's savepoint and is recorded (status ``failed``, the error), so the
delivery is still stored and answered 2xx after the caller's commit, and ``replay`` can run it again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

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

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "processed": self.processed,
            "ignored": self.ignored,
            "failed": self.failed,
            "event_ids": self.event_ids[:100],
        }
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
    for event in stored:
        result.event_ids.append(event.id)
        await run_event(session, org_id=org_id, event=event, processor=processor, result=result)
    return result


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


async def run_event(
    session: AsyncSession, *, org_id: int, event: WebhookEvent, processor: Processor, result: IngestResult
) -> None:
    """Process one stored event in a savepoint and record its outcome on the row."""
    values: dict[str, Any] = {"attempts": WebhookEvent.attempts + 1, "processed_at": dt.datetime.now(dt.UTC)}
    try:
        async with session.begin_nested():
            outcome = await processor(session, org_id, event)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the database went away: nothing is stored, the sender retries (503)
        values |= {"status": "failed", "error": _error_text(exc)}
        log.warning("webhook.failed event=%s provider=%s error=%s", event.id, event.provider, values["error"])
    except DomainError as exc:
        values |= {"status": "failed", "error": str(exc)[:MAX_ERROR]}
        log.info("webhook.rejected event=%s provider=%s error=%s", event.id, event.provider, exc)
    except Exception as exc:  # a bug in processing must not lose the delivery
        log.exception("webhook.crashed event=%s provider=%s", event.id, event.provider)
        values |= {"status": "failed", "error": f"internal error ({type(exc).__name__})"}
    else:
        values |= {"status": outcome.status, "error": outcome.note}
        result.lead_ids |= outcome.lead_ids
    if values["status"] == "failed":
        result.failed += 1
        result.errors.append({"event_id": event.id, "error": values["error"]})
    elif values["status"] == "ignored":
        result.ignored += 1
    else:
        result.processed += 1
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.organization_id == org_id, WebhookEvent.id == event.id)
        .values(**values)
    )


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
    """Process a stored event again (after a fix, or a lead that now exists); a processed one is left alone."""
    event = await get_event(session, org_id=org_id, event_id=event_id)
    result = IngestResult(event_ids=[event.id])
    if event.status == "processed":
        result.duplicates = 1
        return result
    await run_event(session, org_id=org_id, event=event, processor=processor, result=result)
    return result
