"""Email provider events applied to communications and leads.

Delivery state: queued -> sent -> delivered -> opened -> clicked / replied only ever moves forward (an open
before its delivered implies delivered; a late delivered changes nothing); bounced, complained and failed are
terminal. A hard bounce marks the lead's email invalid; a complaint or an unsubscribe sets do-not-contact.
Each event is recorded once in activity_logs (``email.<kind>``), which is what scoring counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.leads import repository as leads
from lma_bot.models import Communication, Lead, WebhookEvent
from lma_bot.scoring import engine as scoring
from lma_bot.webhooks.service import Incoming, Outcome
from lma_bot.webhooks.types import EmailEvent

PROGRESS = {"queued": 0, "sent": 1, "delivered": 2, "opened": 3, "clicked": 4, "replied": 5}
TERMINAL = frozenset({"bounced", "complained", "failed"})
KIND_TO_STATUS = {
    "processed": "sent",
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "replied": "replied",
    "bounced": "bounced",
    "complained": "complained",
    "dropped": "failed",
}
ENGAGEMENT = frozenset({"opened", "clicked", "replied"})
#: The scoring event each provider event kind is (kinds not listed are not scored).
SCORED_EVENTS = {
    "processed": "email_sent",
    "delivered": "email_delivered",
    "opened": "email_opened",
    "clicked": "email_clicked",
    "replied": "email_replied",
    "bounced": "email_bounced",
    "complained": "email_complained",
    "unsubscribed": "email_unsubscribed",
}


def next_delivery_status(current: str | None, kind: str) -> str | None:
    """The communication's new delivery status after an event of ``kind``, or None when it stays."""
    target = KIND_TO_STATUS.get(kind)
    if target is None or current in TERMINAL:
        return None
    if target in TERMINAL:
        return target
    if PROGRESS.get(current or "queued", 0) >= PROGRESS[target]:
        return None
    return target


def incoming(event: EmailEvent, nonce: str | None = None) -> Incoming:
    normalized = dataclasses.asdict(event)
    raw = normalized.pop("payload")
    normalized["occurred_at"] = event.occurred_at.isoformat()
    return Incoming(
        event_type=event.raw_type,
        provider_event_id=event.provider_event_id,
        payload={"event": normalized, "raw": raw},
        nonce=nonce,
    )


async def process(session: AsyncSession, org_id: int, stored: WebhookEvent) -> Outcome:
    event: dict[str, Any] = stored.payload["event"]
    kind = str(event["kind"])
    if kind == "unknown":
        return Outcome("ignored", note=f"event type {stored.event_type!r} is not acted on")
    occurred = dt.datetime.fromisoformat(event["occurred_at"])
    comm = None
    if event.get("message_id"):
        comm = (
            await session.execute(
                select(Communication)
                .where(
                    Communication.organization_id == org_id, Communication.message_id == event["message_id"]
                )
                .with_for_update()
            )
        ).scalar()
    lead: Lead | None = None
    if comm is not None:
        lead = (await session.execute(leads.by_id(org_id, comm.lead_id).with_for_update())).scalar()
    elif event.get("recipient"):
        lead = (await session.execute(leads.by_email(org_id, event["recipient"]).with_for_update())).scalar()
    if comm is None and lead is None:
        return Outcome(
            "ignored", note=f"no communication with message id {event.get('message_id')!r} and no lead"
        )
    changes: dict[str, Any] = {}
    if comm is not None:
        status = next_delivery_status(comm.delivery_status, kind)
        if status is not None:
            changes["delivery_status"] = [comm.delivery_status, status]
            comm.delivery_status = status
            if status in TERMINAL:
                comm.status = "failed"
            elif comm.status == "scheduled":
                comm.status = "completed"
            if comm.completed_at is None and status != "failed":
                comm.completed_at = occurred
        comm.metadata_ = {**comm.metadata_, "last_event": kind, "last_event_at": occurred.isoformat()}
    if lead is not None:
        if kind == "bounced" and event.get("bounce_type") == "hard" and lead.email_status != "invalid":
            changes["email_status"] = [lead.email_status, "invalid"]
            lead.email_status = "invalid"
        if kind in ("complained", "unsubscribed") and not lead.do_not_contact:
            changes["do_not_contact"] = [False, True]
            lead.do_not_contact = True
        if kind in ENGAGEMENT and (lead.last_engagement_date is None or lead.last_engagement_date < occurred):
            lead.last_engagement_date = occurred
    await session.flush()
    await record(
        session,
        org_id=org_id,
        lead_id=lead.id if lead else None,
        activity_type=f"email.{kind}",
        entity_type="communication" if comm else "lead",
        entity_id=comm.id if comm else (lead.id if lead else None),
        before={k: v[0] for k, v in changes.items()} or None,
        after={k: v[1] for k, v in changes.items()} or None,
        metadata={
            "provider": stored.provider,
            "webhook_event_id": stored.id,
            "message_id": event.get("message_id"),
            "url": event.get("url"),
            "reason": event.get("reason"),
        },
    )
    if lead is not None and kind in SCORED_EVENTS:
        await scoring.record_event(
            session,
            org_id=org_id,
            lead_id=lead.id,
            event_type=SCORED_EVENTS[kind],
            dedupe_key=f"webhook:{stored.id}",
            occurred_at=occurred,
            properties={"message_id": event.get("message_id"), "url": event.get("url")},
        )
    return Outcome("processed", {lead.id} if lead else set())
