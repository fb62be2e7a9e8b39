from __future__ import annotations

from sqlalchemy import Select, func, select

from lma_bot.models import Lead


def live(org_id: int) -> Select[tuple[Lead]]:
    """Every query on leads starts here: this organization's leads that are not soft-deleted."""
    return select(Lead).where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))


def by_id(org_id: int, lead_id: int) -> Select[tuple[Lead]]:
    return live(org_id).where(Lead.id == lead_id)


def by_email(org_id: int, email: str) -> Select[tuple[Lead]]:
    return live(org_id).where(func.lower(Lead.email) == email.lower())
