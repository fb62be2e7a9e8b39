"""What every provider module produces: verification outcomes and normalized events.

A provider module (``lma_bot.webhooks.providers.<name>``) offers two pure functions, no I/O:

- ``verify(headers, body, secrets, now) -> Verified``: raises :class:`WebhookAuthError` (HTTP 401) when the
  request is not provably from the provider for this integration. ``secrets`` is the integration's decrypted
  secrets; a value may hold several keys separated by commas or newlines (key rotation: any one verifies).
- ``parse(body, content_type) -> list[EmailEvent]`` (email providers) / the n8n module's own parser: raises
  :class:`WebhookPayloadError` (HTTP 400) with a message naming what is wrong. Unknown event types are not
  errors: they parse as ``kind="unknown"`` and are stored and ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

EmailEventKind = Literal[
    "processed",  # accepted by the provider for delivery
    "deferred",  # temporary failure, the provider retries
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "dropped",  # the provider refused to send (suppression list, invalid address)
    "complained",  # marked as spam
    "unsubscribed",
    "unknown",  # an event type we do not act on: stored, answered 2xx, otherwise ignored
]

Headers = Mapping[
    str, str
]  # case-insensitive in practice (aiohttp's CIMultiDictProxy); tests pass CIMultiDict


class WebhookAuthError(Exception):
    """The request is not authenticated for this integration (HTTP 401). The message is for logs only."""


class WebhookPayloadError(ValueError):
    """An authenticated request whose body is malformed (HTTP 400); the message says what is wrong."""


@dataclass(frozen=True)
class Verified:
    """A request that passed verification. ``nonce``: a value that must never be accepted twice for this
    integration (Mailgun's ``token``); the gateway stores it and refuses a replay with 401."""

    nonce: str | None = None


@dataclass(frozen=True)
class EmailEvent:
    provider_event_id: str  # unique per event at the provider (dedupe key per integration)
    kind: EmailEventKind
    raw_type: str  # the provider's own event name, e.g. "bounce", "Open", "failed"
    occurred_at: dt.datetime  # timezone-aware UTC
    message_id: str | None  # ours when we set it (custom arg / metadata), else the SMTP Message-ID, no <>
    recipient: str | None  # lower-cased email address
    bounce_type: Literal["hard", "soft"] | None = None
    url: str | None = None  # clicked link
    reason: str | None = None  # bounce / drop / deferral reason as the provider words it
    payload: dict[str, Any] = field(default_factory=dict)  # the event's own JSON object, unchanged
