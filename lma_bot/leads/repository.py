from __future__ import annotations

import re

from sqlalchemy import Select, and_, case, func, or_, select

from lma_bot.leads.schemas import Cursor, LeadQuery, ListFilter
from lma_bot.models import Communication, Lead, LeadNote, User


def live(org_id: int) -> Select[tuple[Lead]]:
    """Every query on leads starts here: this organization's leads that are not soft-deleted."""
    return select(Lead).where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))


def by_id(org_id: int, lead_id: int) -> Select[tuple[Lead]]:
    return live(org_id).where(Lead.id == lead_id)


def by_email(org_id: int, email: str) -> Select[tuple[Lead]]:
    return live(org_id).where(Lead.email_normalized == email.lower())


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def search_terms(text: str) -> list[str]:
    """The words of a `find` text, each usable as a tsquery prefix term."""
    return [t.lower() for t in _TOKEN.findall(text)][:8]


def page(
    org_id: int,
    query: LeadQuery,
    *,
    viewer_id: int,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
) -> Select[tuple[Lead, User]]:
    """A page of leads, newest first, with their owners. ``after``: older than the cursor (Next);
    ``before``: newer than the cursor (Previous; rows come back oldest first, the caller reverses)."""
    stmt = (
        select(Lead, User)
        .outerjoin(User, and_(User.organization_id == Lead.organization_id, User.id == Lead.assigned_to_id))
        .where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))
    )
    if query.text is not None:
        terms = search_terms(query.text)
        tsquery = " & ".join(f"{t}:*" for t in terms)
        stmt = stmt.where(Lead.search_vector.op("@@")(func.to_tsquery("simple", tsquery)))
    elif query.filter is ListFilter.MINE:
        stmt = stmt.where(Lead.assigned_to_id == viewer_id)
    elif query.filter is ListFilter.UNASSIGNED:
        stmt = stmt.where(Lead.assigned_to_id.is_(None))
    elif query.filter is ListFilter.STATUS:
        stmt = stmt.where(Lead.status == query.value)
    elif query.filter is ListFilter.TAG:
        stmt = stmt.where(Lead.tags.contains([query.value]))
    # Keyset conditions spelled with plain comparisons: a row comparison (record_lt) is not leakproof, so
    # under row-level security it could not be an index condition.
    if before is not None:
        newer = or_(
            Lead.created_at > before.created_at,
            and_(Lead.created_at == before.created_at, Lead.id > before.id),
        )
        stmt = stmt.where(Lead.created_at >= before.created_at, newer)
        return stmt.order_by(Lead.created_at.asc(), Lead.id.asc()).limit(limit + 1)
    if after is not None:
        older = or_(
            Lead.created_at < after.created_at,
            and_(Lead.created_at == after.created_at, Lead.id < after.id),
        )
        stmt = stmt.where(Lead.created_at <= after.created_at, older)
    return stmt.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit + 1)


def recent_notes(org_id: int, lead_id: int, limit: int) -> Select[tuple[LeadNote, User]]:
    return (
        select(LeadNote, User)
        .outerjoin(User, and_(User.organization_id == LeadNote.organization_id, User.id == LeadNote.user_id))
        .where(LeadNote.organization_id == org_id, LeadNote.lead_id == lead_id)
        .order_by(LeadNote.created_at.desc(), LeadNote.id.desc())
        .limit(limit)
    )


def next_reminder(org_id: int, lead_id: int) -> Select[tuple[Communication]]:
    return (
        select(Communication)
        .where(
            Communication.organization_id == org_id,
            Communication.lead_id == lead_id,
            Communication.status == "scheduled",
            Communication.scheduled_at >= func.now(),
        )
        .order_by(Communication.scheduled_at.asc())
        .limit(1)
    )


def owner(org_id: int, user_id: int) -> Select[tuple[User]]:
    return select(User).where(User.organization_id == org_id, User.id == user_id)


OPEN_STATUSES = ("new", "contacted", "qualified", "proposal", "negotiation")


def open_leads_of(org_id: int, user_id: int, limit: int) -> Select[tuple[Lead]]:
    """A user's open leads, hot first, then by score."""
    heat = case((Lead.lead_temperature == "hot", 0), (Lead.lead_temperature == "warm", 1), else_=2)
    return (
        live(org_id)
        .where(Lead.assigned_to_id == user_id, Lead.status.in_(OPEN_STATUSES))
        .order_by(heat, Lead.score.desc(), Lead.id.desc())
        .limit(limit)
    )
