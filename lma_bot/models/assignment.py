from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, TenantMixin, now_column, one_of, tenant_fk, user_fk

ASSIGNMENT_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled", "completed")


class LeadAssignment(BigTenantMixin, Base):
    """History of a lead's owners, and reassignment requests awaiting a manager's decision.

    A direct assignment is written ``completed``; a rep's request starts ``pending`` and is decided once.
    At most one request per lead is pending (partial unique index).
    """

    __tablename__ = "lead_assignments"
    __table_args__ = (
        tenant_fk("lead_id", "leads"),
        user_fk("assigned_from"),
        user_fk("assigned_to"),
        user_fk("assigned_by"),
        user_fk("requested_by"),
        user_fk("decided_by"),
        one_of("status", ASSIGNMENT_STATUSES),
        Index("idx_lead_assignments_lead_id", "lead_id"),
        Index("idx_lead_assignments_assigned_to", "assigned_to"),
        Index("idx_lead_assignments_assigned_at", "assigned_at"),
        Index("idx_lead_assignments_assigned_from", "assigned_from"),
        Index("idx_lead_assignments_assigned_by", "assigned_by"),
        Index("idx_lead_assignments_requested_by", "requested_by"),
        Index("idx_lead_assignments_decided_by", "decided_by"),
        Index(
            "idx_lead_assignments_pending_expiry",
            "organization_id",
            "expires_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "uq_lead_assignments_one_pending",
            "organization_id",
            "lead_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    lead_id: Mapped[int] = mapped_column(Integer, nullable=False)
    assigned_from: Mapped[int | None] = mapped_column(Integer)
    assigned_to: Mapped[int | None] = mapped_column(Integer)
    assigned_by: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="completed")
    requested_by: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decision_note: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    #: Where the request was posted for a decision: ``[{"channel": C, "ts": T}, ...]`` (a channel, or DMs).
    approval_messages: Mapped[list[Any]] = mapped_column(nullable=False, server_default=text("'[]'::jsonb"))
    assigned_at: Mapped[dt.datetime] = now_column()


class AssignmentRotation(TenantMixin, Base):
    """Automatic assignment state of an organization, one row per ``scope`` (``leads``).

    Lead creates lock this row (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``) while they pick an owner,
    so concurrent creates take turns: round robin continues after ``last_user_id``. ``nobody_eligible_since``
    is set while new leads find nobody eligible; managers are told once (``nobody_eligible_notified_at``).
    """

    __tablename__ = "assignment_rotations"
    __table_args__ = (
        UniqueConstraint("organization_id", "scope"),
        user_fk("last_user_id"),
        Index("idx_assignment_rotations_last_user_id", "organization_id", "last_user_id"),
    )

    scope: Mapped[str] = mapped_column(String(50), nullable=False, server_default="leads")
    last_user_id: Mapped[int | None] = mapped_column(Integer)
    assigned_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    nobody_eligible_since: Mapped[dt.datetime | None]
    nobody_eligible_notified_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
