"""``lma-bot webhooks replay EVENT_ID``: run a stored delivery's processing again."""

from __future__ import annotations

from lma_bot.db import Database
from lma_bot.errors import NotFound
from lma_bot.webhooks import email_events, n8n_actions
from lma_bot.webhooks.service import IngestResult, Processor, get_event, replay


def processor_for(provider: str) -> Processor:
    return n8n_actions.process if provider == "n8n" else email_events.process


async def replay_event(database: Database, event_id: int) -> IngestResult:
    org_id = await database.resolve_webhook_event(event_id)
    if org_id is None:
        raise NotFound(f"webhook event {event_id} not found")
    async with database.uow(org_id) as session:
        event = await get_event(session, org_id=org_id, event_id=event_id)
        return await replay(
            session, org_id=org_id, event_id=event.id, processor=processor_for(event.provider)
        )
