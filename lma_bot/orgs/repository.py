from __future__ import annotations

from sqlalchemy import Select, select

from lma_bot.models import Organization


def organization(org_id: int) -> Select[tuple[Organization]]:
    return select(Organization).where(Organization.id == org_id)
