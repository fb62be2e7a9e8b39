from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from lma_bot.leads.schemas import Cursor, LeadQuery, ListFilter
from lma_bot.models import Communication, Lead, LeadNote, LeadSearchTerm, LeadTag, User


def live(org_id: int) -> Select[tuple[Lead]]:
    """Every query on leads starts here: this organization's leads that are not soft-deleted."""
    return select(Lead).where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))


def by_id(org_id: int, lead_id: int) -> Select[tuple[Lead]]:
    return live(org_id).where(Lead.id == lead_id)


def by_email(org_id: int, email: str) -> Select[tuple[Lead]]:
    return live(org_id).where(Lead.email_normalized == email.lower())


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def search_terms(text: str) -> list[str]:
    """The words of a `find` text (lower case, at most eight), each matched as a prefix of a lead's words."""
    return [t.lower() for t in _TOKEN.findall(text)][:8]


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``, in code point ("C") order;
    None when there is none (a prefix of only U+10FFFF)."""
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i])
        if code < 0x10FFFF:
            code += 1
            if 0xD800 <= code <= 0xDFFF:  # surrogates are not characters
                code = 0xE000
            return prefix[:i] + chr(code)
    return None


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
    ``before``: newer than the cursor (Previous; rows come back oldest first, the caller reverses).

    Every condition is spelled with leakproof operators (``=``, ``<``, ``>=`` on integers, text and
    timestamps), so under row-level security each one can be an index condition: `find` and `tag:` go through
    the lookup tables, never ``@@`` or ``@>`` on the lead row.
    """
    stmt = select(Lead, User)
    created: Any = Lead.created_at
    ident: Any = Lead.id
    if query.filter is ListFilter.TAG and query.text is None:
        # Drive from the tag's index entries, already in page order.
        stmt = stmt.select_from(LeadTag).join(
            Lead, and_(Lead.organization_id == LeadTag.organization_id, Lead.id == LeadTag.lead_id)
        )
        stmt = stmt.where(LeadTag.organization_id == org_id, LeadTag.tag == query.value)
        created, ident = LeadTag.created_at, LeadTag.lead_id
    stmt = stmt.outerjoin(
        User, and_(User.organization_id == Lead.organization_id, User.id == Lead.assigned_to_id)
    ).where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))
    if query.text is not None:
        for term in dict.fromkeys(search_terms(query.text)):
            word = aliased(LeadSearchTerm)
            match = [word.organization_id == org_id, word.lead_id == Lead.id, word.term >= term]
            upper = prefix_upper_bound(term)
            if upper is not None:
                match.append(word.term < upper)
            stmt = stmt.where(exists().where(*match))
    elif query.filter is ListFilter.MINE:
        stmt = stmt.where(Lead.assigned_to_id == viewer_id)
    elif query.filter is ListFilter.UNASSIGNED:
        stmt = stmt.where(Lead.assigned_to_id.is_(None))
    elif query.filter is ListFilter.STATUS:
        stmt = stmt.where(Lead.status == query.value)
    # Keyset conditions spelled with plain comparisons: a row comparison (record_lt) is not leakproof, so
    # under row-level security it could not be an index condition.
    if before is not None:
        newer = or_(created > before.created_at, and_(created == before.created_at, ident > before.id))
        stmt = stmt.where(created >= before.created_at, newer)
        return stmt.order_by(created.asc(), ident.asc()).limit(limit + 1)
    if after is not None:
        older = or_(created < after.created_at, and_(created == after.created_at, ident < after.id))
        stmt = stmt.where(created <= after.created_at, older)
    return stmt.order_by(created.desc(), ident.desc()).limit(limit + 1)


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
