"""The outbound trigger payload, version 1 (``docs/webhooks.md``, "Outbound"; JSON Schema in
``docs/n8n-trigger-v1.schema.json``), and its signature.

The body is compact JSON; it is signed like the callbacks n8n sends us (:func:`lma_bot.webhooks.n8n.sign`):
``X-LMA-Timestamp: <unix seconds>`` and ``X-LMA-Signature: v1=<hex HMAC-SHA256(webhook_secret,
"<timestamp>.<raw body>")>`` with the n8n integration's (newest) ``webhook_secret``. The body of an execution
is the same on every attempt; the timestamp and signature are fresh on each.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lma_bot.models import Lead, User
from lma_bot.webhooks.n8n import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, split_secrets

VERSION = 1
EXECUTION_HEADER = "X-LMA-Execution-Id"
EVENT_HEADER = "X-LMA-Event"
ATTEMPT_HEADER = "X-LMA-Attempt"
EVENTS = (
    "lead.created",
    "lead.status_changed",
    "lead.assigned",
    "lead.score_threshold_crossed",
    "note.added",
    "manual",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeadSnapshot(_Model):
    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    phone: str | None
    job_title: str | None
    source: str | None
    status: str
    score: int
    lead_temperature: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    assigned_to_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ActorView(_Model):
    type: Literal["user", "system"]
    id: int | None = None
    name: str | None = None
    email: str | None = None
    slack_user_id: str | None = None


class WorkflowRef(_Model):
    id: int
    name: str
    n8n_workflow_id: str


class TriggerPayload(_Model):
    """What n8n receives. ``execution_id`` is ours: send it back as ``execution.workflow_execution_id`` in a
    callback to report the run's status."""

    version: Literal[1] = 1
    event: Literal[
        "lead.created",
        "lead.status_changed",
        "lead.assigned",
        "lead.score_threshold_crossed",
        "note.added",
        "manual",
    ]
    occurred_at: dt.datetime
    execution_id: int
    organization_id: int
    workflow: WorkflowRef
    lead: LeadSnapshot | None
    actor: ActorView
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description="what changed: {field: {from, to}} (status, assigned_to_id, score), or {note: {...}}",
    )


def lead_snapshot(lead: Lead) -> dict[str, Any]:
    return LeadSnapshot(
        id=lead.id,
        email=lead.email,
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        phone=lead.phone,
        job_title=lead.job_title,
        source=lead.source,
        status=lead.status,
        score=lead.score,
        lead_temperature=lead.lead_temperature,
        tags=list(lead.tags or []),
        custom_fields=dict(lead.custom_fields or {}),
        assigned_to_id=lead.assigned_to_id,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
    ).model_dump(mode="json")


def actor_view(user: User | None) -> dict[str, Any]:
    if user is None:
        return ActorView(type="system").model_dump(mode="json")
    return ActorView(
        type="user", id=user.id, name=user.name, email=user.email, slack_user_id=user.slack_user_id
    ).model_dump(mode="json")


def body(
    *,
    execution_id: int,
    organization_id: int,
    workflow: WorkflowRef,
    event: str,
    occurred_at: str,
    lead: dict[str, Any] | None,
    actor: dict[str, Any],
    changes: dict[str, Any],
) -> bytes:
    """The exact bytes sent (validated against :class:`TriggerPayload`)."""
    payload = TriggerPayload.model_validate(
        {
            "version": VERSION,
            "event": event,
            "occurred_at": occurred_at,
            "execution_id": execution_id,
            "organization_id": organization_id,
            "workflow": workflow.model_dump(),
            "lead": lead,
            "actor": actor,
            "changes": changes,
        }
    )
    return json.dumps(payload.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()


def signed_headers(
    secret_value: str, raw: bytes, *, execution_id: int, event: str, attempt: int, now: float | None = None
) -> dict[str, str]:
    keys = split_secrets(secret_value)
    if not keys:
        raise ValueError("the n8n integration has no webhook_secret")
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "lma-bot-workflows/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(keys[0], timestamp, raw),
        EXECUTION_HEADER: str(execution_id),
        EVENT_HEADER: event,
        ATTEMPT_HEADER: str(attempt),
    }


def json_schema() -> dict[str, Any]:
    schema = TriggerPayload.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lma-bot workflow trigger, version 1"
    return schema
