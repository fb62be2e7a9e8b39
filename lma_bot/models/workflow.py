from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from lma_bot.models.base import Base, BigTenantMixin, TenantMixin, now_column, one_of, tenant_fk, user_fk

WORKFLOW_CATEGORIES = (
    "lead_nurturing",
    "follow_up",
    "qualification",
    "onboarding",
    "re_engagement",
    "notification",
    "other",
)
WORKFLOW_TRIGGER_TYPES = (
    "manual",
    "scheduled",
    "event_based",
    "lead_status_change",
    "lead_created",
    "lead_assigned",
    "score_threshold",
    "note_added",
)
EXECUTION_STATUSES = ("pending", "running", "waiting", "success", "error", "cancelled")


class Workflow(TenantMixin, Base):
    """An n8n workflow an organization triggers from lead events."""

    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("organization_id", "n8n_workflow_id"),
        user_fk("created_by"),
        one_of("category", WORKFLOW_CATEGORIES),
        one_of("trigger_type", WORKFLOW_TRIGGER_TYPES),
        Index("idx_workflows_organization_id", "organization_id"),
        Index("idx_workflows_n8n_id", "n8n_workflow_id"),
        Index("idx_workflows_trigger_type", "trigger_type"),
        Index("idx_workflows_category", "category"),
        Index("idx_workflows_created_by", "created_by"),
    )

    n8n_workflow_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    trigger_type: Mapped[str | None] = mapped_column(String(100))
    trigger_conditions: Mapped[dict[str, Any]] = mapped_column(
        nullable=False, server_default=text("'{}'::jsonb")
    )
    configuration: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)


class WorkflowExecution(BigTenantMixin, Base):
    """One run of a workflow; written before the outbound POST so its id travels in the payload."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        tenant_fk("workflow_id", "workflows"),
        tenant_fk("lead_id", "leads"),
        user_fk("triggered_by"),
        one_of("status", EXECUTION_STATUSES),
        Index(
            "idx_workflow_executions_workflow_status",
            "workflow_id",
            "status",
            text("started_at DESC"),
        ),
        Index("idx_workflow_executions_lead_id", "lead_id"),
        Index("idx_workflow_executions_n8n_execution_id", "organization_id", "n8n_execution_id"),
        Index("idx_workflow_executions_triggered_by", "triggered_by"),
        Index(
            "idx_workflow_executions_due",
            "organization_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    workflow_id: Mapped[int] = mapped_column(Integer, nullable=False)
    lead_id: Mapped[int | None] = mapped_column(Integer)
    n8n_execution_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    trigger_event: Mapped[str | None] = mapped_column(String(100))
    input_data: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    output_data: Mapped[dict[str, Any]] = mapped_column(nullable=False, server_default=text("'{}'::jsonb"))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    triggered_by: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = now_column()
    finished_at: Mapped[dt.datetime | None]
    #: the outbox: a pending row is sent when due; a claim holds it for one attempt (see lma_bot.workflows)
    next_attempt_at: Mapped[dt.datetime] = now_column()
    lease_expires_at: Mapped[dt.datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = now_column()
    updated_at: Mapped[dt.datetime] = now_column(onupdate=True)
