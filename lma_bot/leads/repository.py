from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from lma_bot.leads.schemas import Cursor, LeadQuery, ListFilter
from lma_bot.models import Lead, LeadNote, LeadSearchTerm, LeadTag, Reminder, User


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


# `/lead find`: how a page is found depends on how many lookup entries each word has (see ``find_plan``).
FIND_SELECTIVE = 2000
"""A word with fewer lookup entries than this is *selective*: all its leads are fetched and sorted."""
FIND_WINDOW = 3000
"""When every word is common, at most this many of the newest leads are read looking for the page."""
FIND_FIRST_WINDOW = 500
"""...after a first look at this many: no match there and the words are rare together, so join their entries."""


class FindMode(StrEnum):
    DRIVE = (
        "drive"  # the rarest word's entries (< FIND_SELECTIVE) drive; each other word is one probe per lead
    )
    WALK = "walk"  # the newest FIND_WINDOW leads, newest first, each word one probe per lead
    INTERSECT = "intersect"  # the rarest word's entries joined with the others' (planned for these words)


@dataclass(frozen=True)
class FindPlan:
    mode: FindMode
    driver: int = 0  # index (in ``search_terms`` order, duplicates removed) of the word that drives
    window: int = 0  # WALK: how many of the newest leads to read at most (0: FIND_WINDOW)


@dataclass(frozen=True)
class _Word:
    term: str
    upper: str | None


def find_words(text: str) -> list[_Word]:
    return [_Word(t, prefix_upper_bound(t)) for t in dict.fromkeys(search_terms(text))]


# A `find` runs two statements whose shape depends only on how many words there are (and which of them have
# an upper bound), the cursor's direction, the plan and the page size. Each shape is built once
# (``_counts_template``, ``_find_template``) with named parameters, and every request sends only its values
# (``_find_params``): building the statements cost more client CPU (about 3 ms) than PostgreSQL spent running
# them on the 500,000-lead organization.


class _Towards(StrEnum):
    START = "start"  # no cursor: the newest leads
    OLDER = "older"  # after a cursor (Next)
    NEWER = "newer"  # before a cursor (Previous: rows come back oldest first)


@dataclass(frozen=True)
class _Shape:
    uppers: tuple[bool, ...]  # one per word (in ``find_words`` order): does it have an upper bound
    towards: _Towards

    @classmethod
    def of(cls, words: Sequence[_Word], after: Cursor | None, before: Cursor | None) -> _Shape:
        towards = _Towards.NEWER if before else _Towards.OLDER if after else _Towards.START
        return cls(tuple(w.upper is not None for w in words), towards)


def _find_params(
    org_id: int, words: Sequence[_Word], after: Cursor | None, before: Cursor | None
) -> dict[str, Any]:
    """The values of a `find` template's parameters (see ``_Binds``)."""
    params: dict[str, Any] = {"org": org_id}
    for i, word in enumerate(words):
        params[f"w{i}"] = word.term
        if word.upper is not None:
            params[f"w{i}_upper"] = word.upper
    cursor = before or after
    if cursor is not None:
        params["cursor_at"], params["cursor_id"] = cursor.created_at, cursor.id
    return params


@dataclass(frozen=True)
class _Binds:
    """The named parameters of a `find` template. ``literal``: their values are written into the SQL text at
    execution (``literal_execute``; SQLAlchemy still compiles the statement once), so PostgreSQL plans the
    statement for them: a prepared statement would otherwise switch to a generic plan that cannot know how
    common a word is."""

    literal: bool = False

    def org(self) -> Any:
        return bindparam("org", type_=Integer, literal_execute=self.literal)

    def word(self, column: Any, i: int, has_upper: bool) -> list[Any]:
        """``column`` starts with word ``i``: a code-point range, an index condition under row-level
        security."""
        conds = [column >= self._text(f"w{i}")]
        if has_upper:
            conds.append(column < self._text(f"w{i}_upper"))
        return conds

    def keyset(self, created: Any, ident: Any, towards: _Towards) -> list[Any]:
        if towards is _Towards.START:
            return []
        at = bindparam("cursor_at", type_=DateTime(timezone=True), literal_execute=self.literal)
        key = bindparam("cursor_id", type_=Integer, literal_execute=self.literal)
        return _keyset_on(created, ident, at, key, newer=towards is _Towards.NEWER)

    def _text(self, name: str) -> Any:
        value = bindparam(name, type_=Text, literal_execute=self.literal)
        return value.collate("C") if self.literal else value


@lru_cache(maxsize=256)
def _counts_template(shape: _Shape) -> Select[Any]:
    """For each word of a `find` text, how many lookup entries start with it, counted up to FIND_SELECTIVE
    (an index-only scan that stops there): one row, one column per word (``c0``, ``c1``, ...). With several
    words, when every one is common, also ``together``: how many of the newest FIND_FIRST_WINDOW leads past the
    cursor have them all (else NULL; PostgreSQL only runs that subquery when the CASE needs it)."""
    binds = _Binds()
    columns = []
    for i, has_upper in enumerate(shape.uppers):
        entries = (
            select(LeadSearchTerm.lead_id)
            .where(
                LeadSearchTerm.organization_id == binds.org(), *binds.word(LeadSearchTerm.term, i, has_upper)
            )
            .limit(FIND_SELECTIVE)
            .subquery(f"w{i}")
        )
        columns.append(select(func.count()).select_from(entries).scalar_subquery().label(f"c{i}"))
    if len(shape.uppers) < 2:
        return select(*columns)
    counts = select(*columns).offset(0).subquery("counts")  # OFFSET 0: each count runs once
    window = _walk_window(binds, shape.towards, FIND_FIRST_WINDOW)
    together = (
        select(func.count())
        .select_from(window)
        .where(*(_has_word(binds, window.c.id, i, u) for i, u in enumerate(shape.uppers)))
        .scalar_subquery()
    )
    common = and_(*(counts.c[f"c{i}"] >= FIND_SELECTIVE for i in range(len(shape.uppers))))
    return select(*counts.c, case((common, together), else_=None).label("together"))


def word_counts(
    org_id: int, text: str, *, after: Cursor | None = None, before: Cursor | None = None
) -> Select[Any]:
    """``_counts_template`` for ``text`` with its values bound (to inspect or explain it)."""
    words = find_words(text)
    return _counts_template(_Shape.of(words, after, before)).params(
        _find_params(org_id, words, after, before)
    )


def find_plan(counts: Sequence[int]) -> FindPlan:
    """Drive from the rarest word when it is selective; else walk the newest leads."""
    driver = min(range(len(counts)), key=lambda i: counts[i])
    if counts[driver] < FIND_SELECTIVE:
        return FindPlan(FindMode.DRIVE, driver)
    return FindPlan(FindMode.WALK, driver)


def _walk_window(binds: _Binds, towards: _Towards, size: int) -> Any:
    """The ids and created_at of the newest ``size`` leads past the cursor, read on idx_leads_org_created_at.

    Soft-deleted leads are not filtered here (they have no lookup entries, so no probe matches them, and the
    page's join to ``leads`` checks ``deleted_at`` again): every other index on (organization_id, created_at)
    is partial on ``deleted_at IS NULL``, and a generic plan once read ``idx_leads_org_owner_created`` whole
    (140,000 entries, then a sort) for a page-2 window."""
    stmt = select(Lead.id, Lead.created_at).where(
        Lead.organization_id == binds.org(), *binds.keyset(Lead.created_at, Lead.id, towards)
    )
    return _ordered(stmt, Lead.created_at, Lead.id, newer=towards is _Towards.NEWER, limit=size - 1).subquery(
        "walk"
    )


def _has_word(binds: _Binds, lead_id: Any, i: int, has_upper: bool) -> Any:
    """A correlated probe of ``pk_lead_search_terms`` (organization_id, lead_id, term): the lead's own few
    entries, checked against word ``i``.

    Written as a scalar subquery with LIMIT 1, which PostgreSQL keeps as a per-row SubPlan whatever its
    estimates (an EXISTS can become a join, and a generic plan once chose a nested loop over a whole word's
    entries). The word is compared on ``term || ''``, which no index covers: otherwise the planner may probe
    ``idx_lead_search_terms_org_term`` instead, reading the word's whole range for every lead (it did, 0.3 ms
    per lead, for words it thought rare)."""
    probe = aliased(LeadSearchTerm)
    return (
        select(literal_column("1"))
        .where(
            probe.organization_id == binds.org(),
            probe.lead_id == lead_id,
            *binds.word(probe.term.op("||")(literal_column("''")), i, has_upper),
        )
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )


def _keyset_on(created: Any, ident: Any, at: Any, key: Any, *, newer: bool) -> list[Any]:
    # Plain comparisons: a row comparison (record_lt) is not leakproof, so under row-level security it could
    # not be an index condition.
    if newer:
        return [created >= at, or_(created > at, and_(created == at, ident > key))]
    return [created <= at, or_(created < at, and_(created == at, ident < key))]


def _keyset(created: Any, ident: Any, after: Cursor | None, before: Cursor | None) -> list[Any]:
    cursor = before or after
    if cursor is None:
        return []
    return _keyset_on(created, ident, cursor.created_at, cursor.id, newer=before is not None)


def _ordered(stmt: Select[Any], created: Any, ident: Any, *, newer: bool, limit: int) -> Select[Any]:
    """Page order (newest first; oldest first towards newer rows), one row more than a page (is there a next)."""
    order = (created.asc(), ident.asc()) if newer else (created.desc(), ident.desc())
    return stmt.order_by(*order).limit(limit + 1)


def page(
    org_id: int,
    query: LeadQuery,
    *,
    viewer_id: int,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
    find: FindPlan | None = None,
) -> Select[tuple[Lead, User]]:
    """A page of leads, newest first, with their owners. ``after``: older than the cursor (Next);
    ``before``: newer than the cursor (Previous; rows come back oldest first, the caller reverses).
    ``find``: how to look for a `find` text's words (default: driven by the first word, see ``find_plan``).

    Every condition is spelled with leakproof operators (``=``, ``<``, ``>=`` on integers, text and
    timestamps), so under row-level security each one can be an index condition: `find` and `tag:` go through
    the lookup tables, never ``@@`` or ``@>`` on the lead row.
    """
    if query.text is not None:
        words = find_words(query.text)
        template = _find_template(_Shape.of(words, after, before), find or FindPlan(FindMode.DRIVE), limit)
        return template.params(_find_params(org_id, words, after, before))
    stmt = select(Lead, User)
    created: Any = Lead.created_at
    ident: Any = Lead.id
    if query.filter is ListFilter.TAG:
        # Drive from the tag's index entries, already in page order.
        stmt = stmt.select_from(LeadTag).join(
            Lead, and_(Lead.organization_id == LeadTag.organization_id, Lead.id == LeadTag.lead_id)
        )
        stmt = stmt.where(LeadTag.organization_id == org_id, LeadTag.tag == query.value)
        created, ident = LeadTag.created_at, LeadTag.lead_id
    stmt = _with_owner(stmt).where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))
    if query.filter is ListFilter.MINE:
        stmt = stmt.where(Lead.assigned_to_id == viewer_id)
    elif query.filter is ListFilter.UNASSIGNED:
        stmt = stmt.where(Lead.assigned_to_id.is_(None))
    elif query.filter is ListFilter.STATUS:
        stmt = stmt.where(Lead.status == query.value)
    elif query.filter is ListFilter.HOT:
        stmt = stmt.where(Lead.lead_temperature == "hot")
    stmt = stmt.where(*_keyset(created, ident, after, before))
    return _ordered(stmt, created, ident, newer=before is not None, limit=limit)


def _with_owner(stmt: Select[Any]) -> Select[Any]:
    return stmt.outerjoin(
        User, and_(User.organization_id == Lead.organization_id, User.id == Lead.assigned_to_id)
    )


@lru_cache(maxsize=512)
def _find_template(shape: _Shape, plan: FindPlan, limit: int) -> Select[tuple[Lead, User]]:
    newer = shape.towards is _Towards.NEWER
    order = [plan.driver, *(i for i in range(len(shape.uppers)) if i != plan.driver)]  # the driver first
    if plan.mode is FindMode.WALK:
        # The newest FIND_WINDOW leads past the cursor (idx_leads_org_created_at), each word probed per lead;
        # the probes run on the window's rows, before the page's leads are joined.
        binds = _Binds()
        window = _walk_window(binds, shape.towards, plan.window or FIND_WINDOW)
        stmt = (
            select(Lead, User)
            .select_from(window)
            .join(Lead, and_(Lead.organization_id == binds.org(), Lead.id == window.c.id))
        )
        stmt = _with_owner(stmt).where(
            Lead.deleted_at.is_(None), *(_has_word(binds, window.c.id, i, shape.uppers[i]) for i in order)
        )
        return _ordered(stmt, window.c.created_at, window.c.id, newer=newer, limit=limit)
    # The intersect statement carries no parameters at all (organization, words and cursor are written into its
    # text): PostgreSQL plans it for these values every time, so a cached generic plan can never replace it.
    binds = _Binds(literal=plan.mode is FindMode.INTERSECT)
    if plan.mode is FindMode.DRIVE:
        # Fewer than FIND_SELECTIVE entries: every other word is one index probe per candidate.
        entry = aliased(LeadSearchTerm, name="driver")
        candidates = select(entry.lead_id).where(
            entry.organization_id == binds.org(),
            *binds.word(entry.term, plan.driver, shape.uppers[plan.driver]),
            *(_has_word(binds, entry.lead_id, i, shape.uppers[i]) for i in order[1:]),
        )
    else:
        # Every word is common but together they are rare: join the words' entries (index-only range scans)
        # with a FULL JOIN, which PostgreSQL can only run as a hash (or merge) join, kept full by testing the
        # sides with coalesce (not null-rejecting). As an inner join the planner once chose a nested loop from
        # a bad estimate of a word's entries ("george lee": 40 million comparisons, 4 s).
        sides = []
        for n, i in enumerate(order):
            side = aliased(LeadSearchTerm, name=f"word{n}")
            sides.append(
                select(side.lead_id)
                .where(side.organization_id == binds.org(), *binds.word(side.term, i, shape.uppers[i]))
                .subquery(f"w{n}")
            )
        joined: Any = sides[0]
        for side_entries in sides[1:]:
            joined = joined.outerjoin(side_entries, sides[0].c.lead_id == side_entries.c.lead_id, full=True)
        zero = bindparam(None, 0, type_=Integer, literal_execute=True)
        candidates = (
            select(sides[0].c.lead_id)
            .select_from(joined)
            .where(*(func.coalesce(s.c.lead_id, zero) > zero for s in sides))
        )
    matched = candidates.distinct().subquery("matched")
    stmt = (
        select(Lead, User)
        .select_from(matched)
        .join(Lead, and_(Lead.organization_id == binds.org(), Lead.id == matched.c.lead_id))
    )
    stmt = _with_owner(stmt).where(
        Lead.organization_id == binds.org(),
        Lead.deleted_at.is_(None),
        *binds.keyset(Lead.created_at, Lead.id, shape.towards),
    )
    if plan.mode is FindMode.INTERSECT:
        order_by = (
            (Lead.created_at.asc(), Lead.id.asc()) if newer else (Lead.created_at.desc(), Lead.id.desc())
        )
        return stmt.order_by(*order_by).limit(bindparam(None, limit + 1, type_=Integer, literal_execute=True))
    return _ordered(stmt, Lead.created_at, Lead.id, newer=newer, limit=limit)


async def page_rows(
    session: AsyncSession,
    org_id: int,
    query: LeadQuery,
    *,
    viewer_id: int,
    after: Cursor | None,
    before: Cursor | None,
    limit: int,
) -> list[tuple[Lead, User | None]]:
    """Run ``page``: for `find`, first count each word's entries (``word_counts``) to choose how (``find_plan``).
    A walk reads FIND_FIRST_WINDOW leads, then FIND_WINDOW if they held some matches but not a page; when a
    window held no match at all (for several words, ``together`` tells before any walk), or the long one not a
    page, the words' entries are joined (intersect)."""
    if query.text is None:
        stmt = page(org_id, query, viewer_id=viewer_id, after=after, before=before, limit=limit)
        return list((await session.execute(stmt)).tuples())
    words = find_words(query.text)
    shape = _Shape.of(words, after, before)
    params = _find_params(org_id, words, after, before)

    async def run(find: FindPlan) -> list[tuple[Lead, User | None]]:
        return list((await session.execute(_find_template(shape, find, limit), params)).tuples())

    row = (await session.execute(_counts_template(shape), params)).one()
    plan = find_plan([int(c) for c in row[: len(words)]])
    if plan.mode is not FindMode.WALK:
        return await run(plan)
    together = row[len(words)] if len(words) > 1 else None
    if together == 0:  # none of the newest leads has every word: they are rare together
        return await run(FindPlan(FindMode.INTERSECT, plan.driver))
    if together is not None and together <= limit:  # some: a longer walk should fill the page
        rows = await run(FindPlan(FindMode.WALK, plan.driver, FIND_WINDOW))
    else:
        rows = await run(FindPlan(FindMode.WALK, plan.driver, FIND_FIRST_WINDOW))
        if rows and len(rows) <= limit:
            rows = await run(FindPlan(FindMode.WALK, plan.driver, FIND_WINDOW))
    if len(rows) <= limit:
        rows = await run(FindPlan(FindMode.INTERSECT, plan.driver))
    return rows


def recent_notes(org_id: int, lead_id: int, limit: int) -> Select[tuple[LeadNote, User]]:
    return (
        select(LeadNote, User)
        .outerjoin(User, and_(User.organization_id == LeadNote.organization_id, User.id == LeadNote.user_id))
        .where(LeadNote.organization_id == org_id, LeadNote.lead_id == lead_id)
        .order_by(LeadNote.created_at.desc(), LeadNote.id.desc())
        .limit(limit)
    )


def next_reminder(org_id: int, lead_id: int) -> Select[tuple[dt.datetime]]:
    """When the lead's next pending reminder is due (``idx_reminders_org_lead``)."""
    return (
        select(Reminder.due_at)
        .where(
            Reminder.organization_id == org_id,
            Reminder.lead_id == lead_id,
            Reminder.status == "scheduled",
            Reminder.due_at >= func.now(),
        )
        .order_by(Reminder.due_at.asc())
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
