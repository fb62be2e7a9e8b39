"""Notes on leads, with @mentions of organization users and private notes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import InvalidInput
from lma_bot.leads.service import can_see_private, get_lead
from lma_bot.models import Lead, LeadNote, User
from lma_bot.models.note import NOTE_TYPES
from lma_bot.scoring import engine as scoring
from lma_bot.workflows import service as workflows

MAX_NOTE_LENGTH = 4000


@dataclass(frozen=True)
class Mentions:
    users: list[User]  # org users mentioned, in order of first mention
    unknown: list[str]  # Slack ids mentioned who are not users of the organization


async def resolve_mentions(session: AsyncSession, *, org_id: int, slack_user_ids: list[str]) -> Mentions:
    wanted = list(dict.fromkeys(slack_user_ids))
    if not wanted:
        return Mentions(users=[], unknown=[])
    rows = (
        await session.execute(
            select(User).where(User.organization_id == org_id, User.slack_user_id.in_(wanted))
        )
    ).scalars()
    found = {u.slack_user_id: u for u in rows}
    return Mentions(
        users=[found[s] for s in wanted if s in found], unknown=[s for s in wanted if s not in found]
    )


async def add_note(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    author_id: int | None,
    content: str,
    mentioned: list[User],
    is_private: bool = False,
    note_type: str = "general",
) -> tuple[LeadNote, Lead]:
    text = content.strip()
    if not text:
        raise InvalidInput("a note needs some text", field="content")
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            f"a note can be at most {MAX_NOTE_LENGTH} characters (this one has {len(text)})", field="content"
        )
    if note_type not in NOTE_TYPES:
        raise InvalidInput(
            f"unknown note type {note_type!r}; types are {', '.join(NOTE_TYPES)}", field="note_type"
        )
    lead = await get_lead(session, org_id=org_id, lead_id=lead_id)
    note = LeadNote(
        organization_id=org_id,
        lead_id=lead.id,
        user_id=author_id,
        content=text,
        is_private=is_private,
        note_type=note_type,
        mentioned_users=[u.id for u in mentioned],
    )
    session.add(note)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=author_id,
        lead_id=lead.id,
        activity_type="note.added",
        entity_type="note",
        entity_id=note.id,
        after={"is_private": is_private, "mentioned_users": note.mentioned_users, "length": len(text)},
    )
    await workflows.note_added(
        session,
        org_id=org_id,
        lead=lead,
        note_id=note.id,
        content=text,
        is_private=is_private,
        actor_id=author_id,
    )
    await scoring.record_event(
        session,
        org_id=org_id,
        lead_id=lead.id,
        event_type="note_added",
        dedupe_key=f"note:{note.id}",
        occurred_at=note.created_at,
        properties={"note_type": note_type, "is_private": is_private},
    )
    return note, lead


def notify_mentioned(note: LeadNote, lead: Lead, mentioned: list[User]) -> list[User]:
    """Who gets a DM for a note: mentioned, active users other than the author who may see the note."""
    recipients = []
    for user in mentioned:
        if user.id == note.user_id or not user.is_active:
            continue
        if note.is_private and not can_see_private(
            viewer_id=user.id, viewer_role=user.role, author_id=note.user_id, owner_id=lead.assigned_to_id
        ):
            continue
        recipients.append(user)
    return recipients
