from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, now_column, one_of, tenant_fk, user_fk

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
    assigned_at: Mapped[dt.datetime] = now_column()
