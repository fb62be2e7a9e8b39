"""Queries of the assignments domain; every statement starts from the organization."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from lma_bot.models import Lead, LeadAssignment, User

#: Lead statuses that count towards a rep's load (capacity, least busy).
OPEN_STATUSES = ("new", "contacted", "qualified", "proposal", "negotiation")


def assignment(org_id: int, assignment_id: int) -> Select[tuple[LeadAssignment]]:
    return select(LeadAssignment).where(
        LeadAssignment.organization_id == org_id, LeadAssignment.id == assignment_id
    )


def pending_for_lead(org_id: int, lead_id: int) -> Select[tuple[LeadAssignment]]:
    return select(LeadAssignment).where(
        LeadAssignment.organization_id == org_id,
        LeadAssignment.lead_id == lead_id,
        LeadAssignment.status == "pending",
    )


def pending(org_id: int, limit: int) -> Select[tuple[LeadAssignment]]:
    return (
        select(LeadAssignment)
        .where(LeadAssignment.organization_id == org_id, LeadAssignment.status == "pending")
        .order_by(LeadAssignment.expires_at, LeadAssignment.id)
        .limit(limit)
    )


def recent_for_lead(org_id: int, lead_id: int, limit: int) -> Select[tuple[LeadAssignment]]:
    return (
        select(LeadAssignment)
        .where(LeadAssignment.organization_id == org_id, LeadAssignment.lead_id == lead_id)
        .order_by(LeadAssignment.assigned_at.desc(), LeadAssignment.id.desc())
        .limit(limit)
    )


def lead_for_update(org_id: int, lead_id: int) -> Select[tuple[Lead]]:
    return (
        select(Lead)
        .where(Lead.organization_id == org_id, Lead.id == lead_id, Lead.deleted_at.is_(None))
        .with_for_update()
    )


def users(org_id: int, user_ids: set[int]) -> Select[tuple[User]]:
    return select(User).where(User.organization_id == org_id, User.id.in_(user_ids))


def managers(org_id: int, *, admins_only: bool = False) -> Select[tuple[User]]:
    roles = ("admin",) if admins_only else ("manager", "admin")
    return (
        select(User)
        .where(User.organization_id == org_id, User.role.in_(roles), User.is_active.is_(True))
        .order_by(User.id)
    )


def reps(org_id: int) -> Select[tuple[User]]:
    """Active reps, in a stable order (the rotation order)."""
    return (
        select(User)
        .where(User.organization_id == org_id, User.role == "rep", User.is_active.is_(True))
        .order_by(User.id)
    )


def members(org_id: int) -> Select[tuple[User]]:
    return select(User).where(User.organization_id == org_id).order_by(User.role, User.name, User.id)


def open_counts(org_id: int, user_ids: list[int]) -> Select[tuple[int | None, int]]:
    return (
        select(Lead.assigned_to_id, func.count())
        .where(
            Lead.organization_id == org_id,
            Lead.assigned_to_id.in_(user_ids),
            Lead.status.in_(OPEN_STATUSES),
            Lead.deleted_at.is_(None),
        )
        .group_by(Lead.assigned_to_id)
    )
