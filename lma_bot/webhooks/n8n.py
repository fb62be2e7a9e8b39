"""The n8n callback contract, version 1 (``docs/webhooks.md``; JSON Schema in ``docs/n8n-callback-v1.schema.json``).

Authentication, either of:

- **Header Auth** (n8n's "Header Auth" credential): header ``X-LMA-Webhook-Secret`` (or the integration's
  ``header_name``) equal to the integration's ``webhook_secret``;
- **HMAC**: ``X-LMA-Timestamp: <unix seconds>`` and ``X-LMA-Signature: v1=<hex>``, the hex HMAC-SHA256 of
  ``<timestamp>.<raw body>`` keyed with ``webhook_secret``; the timestamp within 5 minutes of our clock. During
  a secret rotation the sender may send several ``v1=`` values separated by commas; one match is enough.

``webhook_secret`` may hold several secrets separated by commas (rotation on our side).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from lma_bot.leads.schemas import LeadCreate
from lma_bot.webhooks.providers import load_json
from lma_bot.webhooks.types import Headers, Verified, WebhookAuthError, WebhookPayloadError

SECRET_HEADER = "X-LMA-Webhook-Secret"  # noqa: S105 (a header name)
TIMESTAMP_HEADER = "X-LMA-Timestamp"
SIGNATURE_HEADER = "X-LMA-Signature"
WINDOW_SECONDS = 300
EXECUTION_STATUSES = ("running", "waiting", "success", "error", "cancelled")


def split_secrets(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").replace("\n", ",").split(",") if s.strip()]


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``v1=<hex>`` for ``body`` at ``timestamp`` (what n8n's Crypto node computes)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify(
    headers: Headers, body: bytes, secrets: dict[str, str], now: float, *, header_name: str | None = None
) -> Verified:
    keys = split_secrets(secrets.get("webhook_secret"))
    if not keys:
        raise WebhookAuthError("integration has no webhook_secret")
    presented = headers.get(header_name or SECRET_HEADER)
    if presented is not None:
        if any(hmac.compare_digest(presented.encode(), k.encode()) for k in keys):
            return Verified()
        raise WebhookAuthError("shared secret does not match")
    timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        raise WebhookAuthError(f"neither {header_name or SECRET_HEADER} nor a {SIGNATURE_HEADER} was sent")
    if not timestamp.strip().isdigit():
        raise WebhookAuthError("timestamp is not a number")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise WebhookAuthError("timestamp outside the 5-minute window")
    offered = [part.strip() for part in signature.split(",") if part.strip().startswith("v1=")]
    for key in keys:
        expected = sign(key, timestamp.strip(), body)
        if any(hmac.compare_digest(expected.encode(), o.encode()) for o in offered):
            return Verified()
    raise WebhookAuthError("signature does not match")


# --- the payload ---------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LeadRef(_Model):
    """A lead of the integration's organization, by our id or by email (exactly one)."""

    id: int | None = Field(default=None, gt=0)
    email: str | None = Field(default=None, max_length=320)

    @model_validator(mode="after")
    def _one(self) -> LeadRef:
        if (self.id is None) == (self.email is None):
            raise ValueError("give the lead's id or its email (exactly one)")
        return self

    @property
    def ref(self) -> str:
        return str(self.id) if self.id is not None else str(self.email)


class _Message(_Model):
    version: Literal[1] = 1
    event_id: str | None = Field(default=None, min_length=1, max_length=200)


class ExecutionInfo(_Model):
    id: str = Field(min_length=1, max_length=255, description="n8n's execution id")
    status: Literal["running", "waiting", "success", "error", "cancelled"]
    workflow_execution_id: int | None = Field(
        default=None, gt=0, description="our workflow_executions id, sent in the trigger payload"
    )
    workflow_id: str | None = Field(default=None, max_length=255, description="n8n's workflow id")
    lead: LeadRef | None = None
    error: str | None = Field(default=None, max_length=10_000)
    data: dict[str, Any] = Field(default_factory=dict)
    finished_at: dt.datetime | None = None


class ExecutionUpdate(_Message):
    type: Literal["execution"]
    execution: ExecutionInfo


class LeadChanges(_Model):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=50)
    job_title: str | None = Field(default=None, max_length=255)
    website: str | None = Field(default=None, max_length=500)
    linkedin_url: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=100)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(default=None, max_length=50)
    custom_fields: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something(self) -> LeadChanges:
        if not self.model_fields_set:
            raise ValueError("changes is empty: name at least one field to change")
        return self


class UpdateLead(_Message):
    type: Literal["update_lead"]
    lead: LeadRef
    changes: LeadChanges


class CreateLead(_Message):
    type: Literal["create_lead"]
    lead: LeadCreate


class NoteBody(_Model):
    content: str = Field(min_length=1, max_length=4000)
    is_private: bool = False
    author_email: str | None = Field(default=None, max_length=320)


class AddNote(_Message):
    type: Literal["add_note"]
    lead: LeadRef
    note: NoteBody


class CommunicationBody(_Model):
    type: Literal["email", "call", "meeting", "linkedin", "sms"]
    direction: Literal["inbound", "outbound"]
    subject: str | None = Field(default=None, max_length=500)
    content: str | None = Field(default=None, max_length=100_000)
    occurred_at: dt.datetime | None = None
    message_id: str | None = Field(default=None, max_length=255)
    user_email: str | None = Field(default=None, max_length=320)


class LogCommunication(_Message):
    type: Literal["log_communication"]
    lead: LeadRef
    communication: CommunicationBody


class ScoreEventBody(_Model):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: dt.datetime | None = None


class ScoreEvent(_Message):
    type: Literal["score_event"]
    lead: LeadRef
    event: ScoreEventBody


class SetStatus(_Message):
    type: Literal["set_status"]
    lead: LeadRef
    status: str = Field(min_length=1, max_length=30)
    reason: str | None = Field(default=None, max_length=500)


N8nMessage = Annotated[
    ExecutionUpdate | UpdateLead | CreateLead | AddNote | LogCommunication | ScoreEvent | SetStatus,
    Field(discriminator="type"),
]
MESSAGE: TypeAdapter[N8nMessage] = TypeAdapter(N8nMessage)
MESSAGE_TYPES = (
    "execution",
    "update_lead",
    "create_lead",
    "add_note",
    "log_communication",
    "score_event",
    "set_status",
)


def json_schema() -> dict[str, Any]:
    schema = MESSAGE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lma-bot n8n callback, version 1"
    return schema


def _location(loc: tuple[int | str, ...]) -> str:
    """``lead.email``, ``tags[2]``: the error's place in the message (loc[0] is the union member's tag)."""
    parts: list[str] = []
    for item in loc[1:]:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts)


def parse(body: bytes) -> tuple[N8nMessage, dict[str, Any]]:
    """The message and its JSON object; :class:`WebhookPayloadError` says what is wrong and where.

    What PostgreSQL's ``jsonb`` cannot store is refused here (400), not at the shared commit: ``NaN`` and
    ``Infinity`` (Python's json reads them) and the NUL character in a string."""
    document = load_json(body, None)
    if not isinstance(document, dict):
        raise WebhookPayloadError("body must be a JSON object")
    kind = document.get("type")
    if kind not in MESSAGE_TYPES:
        raise WebhookPayloadError(f"type: expected one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
    try:
        message = MESSAGE.validate_python(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = _location(tuple(error["loc"]))
        text = str(error["msg"]).removeprefix("Value error, ")
        raise WebhookPayloadError(f"{where}: {text}" if where else text) from None
    return message, document


def event_id(message: N8nMessage, body: bytes) -> str:
    """The dedupe key: the sender's ``event_id``, else execution id + status, else the body's SHA-256."""
    if message.event_id:
        return message.event_id
    if isinstance(message, ExecutionUpdate):
        return f"execution:{message.execution.id}:{message.execution.status}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


if __name__ == "__main__":  # python -m lma_bot.webhooks.n8n > docs/n8n-callback-v1.schema.json
    import sys

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
