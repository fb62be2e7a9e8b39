"""Leads: create, look up, list, find, change status, and the card view.

Slack, n8n and imports all create leads through :func:`create_lead`. Services never commit: the caller owns
the unit of work (``async with database.uow(org_id) as session``).
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.assignments import service as assignments
from lma_bot.errors import Conflict, InvalidInput, NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.leads import repository
from lma_bot.leads.schemas import (
    Cursor,
    LeadCard,
    LeadCreate,
    LeadPage,
    LeadQuery,
    LeadSummary,
    ListFilter,
    NoteView,
    OwnerView,
)
from lma_bot.models import Lead, User
from lma_bot.models.lead import LEAD_STATUSES
from lma_bot.scoring import engine as scoring
from lma_bot.workflows import service as workflows

PAGE_SIZE = 10
CARD_NOTES = 10  # notes kept on the cached card; the viewer's three latest visible ones are shown

#: Where a lead may go from each status. Closed leads (won) stay closed; lost/unqualified may be reopened.
STATUS_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("contacted", "qualified", "unqualified", "lost"),
    "contacted": ("qualified", "unqualified", "lost"),
    "qualified": ("proposal", "unqualified", "lost"),
    "proposal": ("negotiation", "won", "lost", "qualified"),
    "negotiation": ("won", "lost", "proposal"),
    "won": (),
    "lost": ("new",),
    "unqualified": ("new",),
}
assert set(STATUS_TRANSITIONS) == set(LEAD_STATUSES)


class DuplicateLead(Conflict):
    def __init__(self, existing_id: int, email: str, existing_name: str = "") -> None:
        self.existing_id = existing_id
        self.existing_name = existing_name
        super().__init__(f"lead {existing_id} already has the email {email}")


class InvalidTransition(InvalidInput):
    def __init__(self, lead_id: int, current: str, wanted: str) -> None:
        self.allowed = STATUS_TRANSITIONS[current]
        options = ", ".join(self.allowed) if self.allowed else "nowhere: it is closed"
        super().__init__(
            f"lead {lead_id} can't go from {current} to {wanted}; from {current} it can go to {options}",
            field="status",
        )


async def create_lead(
    session: AsyncSession, *, org_id: int, data: LeadCreate, actor_id: int | None = None
) -> Lead:
    """Insert a lead; an email already used by a live lead of the organization raises :class:`DuplicateLead`.

    One statement decides: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on the per-organization email
    index, so concurrent creates of the same email make exactly one lead and nothing is read first.
    """
    validate_document("leads.custom_fields", data.custom_fields)
    stmt = (
        pg_insert(Lead)
        .values(organization_id=org_id, created_by=actor_id, **data.model_dump())
        .on_conflict_do_nothing(
            index_elements=[Lead.organization_id, Lead.email_normalized],
            index_where=Lead.email_normalized.is_not(None) & Lead.deleted_at.is_(None),
        )
        .returning(Lead)
    )
    lead = (await session.scalars(stmt)).one_or_none()
    if lead is None:
        assert data.email is not None  # only the email index can conflict
        existing = (await session.execute(repository.by_email(org_id, data.email))).scalar_one()
        raise DuplicateLead(existing.id, data.email, existing.display_name)
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        lead_id=lead.id,
        activity_type="lead.created",
        entity_type="lead",
        entity_id=lead.id,
        after=data.model_dump(mode="json", exclude_defaults=True),
    )
    if lead.assigned_to_id is None:  # automatic assignment by the organization's strategy
        await assignments.auto_assign(session, org_id=org_id, lead=lead, actor_id=actor_id)
    await workflows.lead_created(session, org_id=org_id, lead=lead, actor_id=actor_id)
    await scoring.lead_changed(session, org_id=org_id, lead_id=lead.id)
    return lead


async def get_lead(session: AsyncSession, *, org_id: int, lead_id: int) -> Lead:
    lead = (await session.execute(repository.by_id(org_id, lead_id))).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


async def resolve_lead(session: AsyncSession, *, org_id: int, ref: str) -> Lead:
    """A lead by the reference a user typed: its number (``42``, ``#42``) or its email."""
    text = ref.strip().removeprefix("#")
    if text.isdigit():
        return await get_lead(session, org_id=org_id, lead_id=int(text))
    if "@" in text:
        lead = (await session.execute(repository.by_email(org_id, text))).scalar_one_or_none()
        if lead is None:
            raise NotFound(f"no lead with the email {text}")
        return lead
    raise InvalidInput(
        f"{ref!r} is not a lead: use its number or email, e.g. 42 or ann@acme.com", field="lead"
    )


def _summary(lead: Lead, owner: User | None) -> LeadSummary:
    return LeadSummary(
        id=lead.id,
        name=lead.display_name,
        email=lead.email,
        company=lead.company,
        status=lead.status,
        score=lead.score,
        lead_temperature=lead.lead_temperature,
        owner_slack_id=owner.slack_user_id if owner else None,
        owner_name=owner.name if owner else None,
        created_at=lead.created_at,
    )


async def list_leads(
    session: AsyncSession,
    *,
    org_id: int,
    viewer_id: int,
    query: LeadQuery,
    after: Cursor | None = None,
    before: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> LeadPage:
    """One page of leads matching ``query`` (a list filter, or a `find` text), newest first."""
    if query.text is not None and not repository.search_terms(query.text):
        raise InvalidInput("find needs a word to look for, e.g. /lead find acme", field="text")
    if query.filter is ListFilter.STATUS and query.value not in LEAD_STATUSES:
        raise InvalidInput(
            f"unknown status {query.value!r}; statuses are {', '.join(LEAD_STATUSES)}", field="status"
        )
    rows = await repository.page_rows(
        session, org_id, query, viewer_id=viewer_id, after=after, before=before, limit=limit
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    items = [_summary(lead, owner) for lead, owner in rows]
    first = Cursor(created_at=items[0].created_at, id=items[0].id) if items else None
    last = Cursor(created_at=items[-1].created_at, id=items[-1].id) if items else None
    if before is not None:
        has_prev, has_next = more, True
    else:
        has_prev, has_next = after is not None, more
    return LeadPage(query=query, items=items, first=first, last=last, has_next=has_next, has_prev=has_prev)


async def change_status(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    status: str,
    actor_id: int | None,
    reason: str | None = None,
) -> tuple[Lead, str]:
    """Move a lead to ``status`` along an allowed transition; returns the lead and its previous status."""
    if status not in LEAD_STATUSES:
        raise InvalidInput(
            f"unknown status {status!r}; statuses are {', '.join(LEAD_STATUSES)}", field="status"
        )
    lead = (await session.execute(repository.by_id(org_id, lead_id).with_for_update())).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    previous = lead.status
    if status == previous:
        raise InvalidInput(f"lead {lead_id} is already {status}", field="status")
    if status not in STATUS_TRANSITIONS[previous]:
        raise InvalidTransition(lead_id, previous, status)
    lead.status = status
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        lead_id=lead.id,
        activity_type="lead.status_changed",
        entity_type="lead",
        entity_id=lead.id,
        description=reason,
        before={"status": previous},
        after={"status": status},
    )
    await workflows.status_changed(
        session, org_id=org_id, lead=lead, previous=previous, actor_id=actor_id, reason=reason
    )
    await scoring.record_event(
        session,
        org_id=org_id,
        lead_id=lead.id,
        event_type="status_changed",
        dedupe_key=f"status:{lead.id}:{uuid.uuid4().hex}",
        properties={"from": previous, "to": status},
    )
    return lead, previous


async def build_card(session: AsyncSession, *, org_id: int, lead_id: int) -> LeadCard:
    """The card of a lead as stored (all recent notes, private ones included; filter with ``visible_notes``)."""
    lead = await get_lead(session, org_id=org_id, lead_id=lead_id)
    owner = None
    if lead.assigned_to_id is not None:
        owner = (await session.execute(repository.owner(org_id, lead.assigned_to_id))).scalar_one_or_none()
    notes = [
        NoteView(
            id=note.id,
            author_id=note.user_id,
            author_name=author.name if author else None,
            author_slack_id=author.slack_user_id if author else None,
            content=note.content,
            is_private=note.is_private,
            note_type=note.note_type,
            created_at=note.created_at,
        )
        for note, author in (
            await session.execute(repository.recent_notes(org_id, lead_id, CARD_NOTES))
        ).tuples()
    ]
    reminder = (await session.execute(repository.next_reminder(org_id, lead_id))).scalar_one_or_none()
    return LeadCard(
        organization_id=org_id,
        id=lead.id,
        name=lead.display_name,
        email=lead.email,
        company=lead.company,
        phone=lead.phone,
        job_title=lead.job_title,
        source=lead.source,
        status=lead.status,
        score=lead.score,
        lead_temperature=lead.lead_temperature,
        tags=list(lead.tags),
        owner=OwnerView(id=owner.id, name=owner.name, slack_user_id=owner.slack_user_id) if owner else None,
        notes=notes,
        next_reminder_at=reminder,
        assignments=await assignments.card_lines(session, org_id=org_id, lead_id=lead_id),
        created_at=lead.created_at,
        updated_at=lead.updated_at,
    )


def can_see_private(*, viewer_id: int, viewer_role: str, author_id: int | None, owner_id: int | None) -> bool:
    """A private note is visible to its author, the lead's owner, and managers/admins."""
    return viewer_role in ("manager", "admin") or viewer_id in (author_id, owner_id)


def visible_notes(card: LeadCard, *, viewer_id: int, viewer_role: str, limit: int = 3) -> list[NoteView]:
    owner_id = card.owner.id if card.owner else None
    shown = [
        note
        for note in card.notes
        if not note.is_private
        or can_see_private(
            viewer_id=viewer_id, viewer_role=viewer_role, author_id=note.author_id, owner_id=owner_id
        )
    ]
    return shown[:limit]


async def open_leads(
    session: AsyncSession, *, org_id: int, user_id: int, limit: int = 10
) -> list[LeadSummary]:
    """The user's open leads for their App Home, hot first."""
    leads = (await session.execute(repository.open_leads_of(org_id, user_id, limit))).scalars()
    return [_summary(lead, None) for lead in leads]
