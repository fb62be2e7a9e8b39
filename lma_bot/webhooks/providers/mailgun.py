"""Mailgun webhooks, JSON format (``signature`` + ``event-data``).

Scheme (Mailgun, "Securing Webhooks": https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks):
the body carries ``signature: {timestamp, token, signature}``; ``signature`` is the hex HMAC-SHA256 of
``timestamp + token`` (no separator) keyed with the domain's HTTP webhook signing key (the integration's
``signing_key``; several may be given, separated by commas or newlines, during a rotation). The signature
does not cover ``event-data``, so the token is returned as the request's nonce and the gateway refuses a
token it has seen (Mailgun: "cache the token ... to prevent replay attacks"); timestamps more than 5
minutes from our clock are refused. Subaccount ``parent-signature`` is not used.

Payload (Mailgun, "Event Structure" and "Event Types": https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types):
``event-data`` has ``event``, ``timestamp`` (Unix seconds, fractional) and ``id`` -- "unique within a day",
so our dedupe key is ``<id>:<whole seconds of timestamp>`` -- plus ``recipient``, ``message.headers.
message-id``, ``user-variables`` (ours: ``lma_message_id``) and, for failures, ``severity``, ``reason`` and
``delivery-status``. ``failed`` with ``severity=temporary`` is a deferral (Mailgun retries); with
``permanent`` it is a hard bounce, except a previously suppressed address (``reason`` ``suppress-*``:
never attempted, so dropped) and the retry limit or an ESP block (``old``, ``espblock``: soft).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal

from lma_bot.webhooks.providers import (
    bare_message_id,
    email_address,
    from_unix,
    load_json,
    mapping,
    split_secrets,
    string,
    text,
    within_window,
)
from lma_bot.webhooks.types import (
    EmailEvent,
    EmailEventKind,
    Headers,
    Verified,
    WebhookAuthError,
    WebhookPayloadError,
)

MESSAGE_ID_VARIABLE = "lma_message_id"  # the user variable (v:lma_message_id) we send with every message

KINDS: dict[str, EmailEventKind] = {
    "accepted": "processed",
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "unsubscribed": "unsubscribed",
    "complained": "complained",
    "rejected": "dropped",
}
SUPPRESSED_REASONS = frozenset({"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"})
SOFT_PERMANENT_REASONS = frozenset({"old", "espblock"})


# --- verification --------------------------------------------------------------------------------------


def verify(headers: Headers, body: bytes, secrets: Mapping[str, str], now: float) -> Verified:
    keys = split_secrets(secrets.get("signing_key"))
    if not keys:
        raise WebhookAuthError("integration has no signing_key")
    timestamp, token, signature = _signature_block(body)
    if not within_window(int(timestamp), now):
        raise WebhookAuthError("timestamp outside the 5-minute window")
    offered = signature.strip().lower().encode()
    if any(hmac.compare_digest(_expected(key, timestamp, token), offered) for key in keys):
        return Verified(nonce=token)
    raise WebhookAuthError("signature does not match any signing key")


def _expected(key: str, timestamp: str, token: str) -> bytes:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest().encode()


def _signature_block(body: bytes) -> tuple[str, str, str]:
    """``(timestamp, token, signature)`` from the body; :class:`WebhookAuthError` when they are not there."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookAuthError("body is not JSON: cannot find the signature") from None
    block = mapping(mapping(document).get("signature"))
    timestamp = _digits(block.get("timestamp"))
    token, signature = block.get("token"), block.get("signature")
    if timestamp is None:
        raise WebhookAuthError("signature.timestamp missing or not a number")
    if not isinstance(token, str) or not token:
        raise WebhookAuthError("signature.token missing")
    if not isinstance(signature, str) or not signature:
        raise WebhookAuthError("signature.signature missing")
    return timestamp, token, signature


def _digits(value: object) -> str | None:
    """The timestamp as Mailgun concatenated it: a string of digits (a JSON integer is accepted too)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


# --- the payload ---------------------------------------------------------------------------------------


def parse(body: bytes, content_type: str | None = None) -> list[EmailEvent]:
    document = load_json(body, content_type)
    if not isinstance(document, dict):
        raise WebhookPayloadError("body must be a JSON object")
    data = document.get("event-data")
    if not isinstance(data, dict):
        raise WebhookPayloadError("event-data missing or not an object")
    return [_event(data)]


def _event(data: dict[str, Any]) -> EmailEvent:
    event_id = text(data.get("id"))
    if event_id is None:
        raise WebhookPayloadError("event-data.id missing")
    raw_type = string(data.get("event"))
    if raw_type is None:
        raise WebhookPayloadError("event-data.event missing or not a string")
    occurred_at = from_unix(data.get("timestamp"), "event-data.timestamp")
    kind, bounce_type = classify(raw_type, data)
    return EmailEvent(
        provider_event_id=f"{event_id}:{int(occurred_at.timestamp())}",
        kind=kind,
        raw_type=raw_type,
        occurred_at=occurred_at,
        message_id=_message_id(data),
        recipient=email_address(data.get("recipient")),
        bounce_type=bounce_type,
        url=text(data.get("url")) if kind == "clicked" else None,
        reason=_reason(data) if kind in ("bounced", "dropped", "deferred") else None,
        payload=data,
    )


def classify(raw_type: str, data: Mapping[str, Any]) -> tuple[EmailEventKind, Literal["hard", "soft"] | None]:
    """Our kind (and bounce type) for a Mailgun event; ``failed`` depends on ``severity`` and ``reason``."""
    if raw_type != "failed":
        return KINDS.get(raw_type, "unknown"), None
    if text(data.get("severity")) == "temporary":
        return "deferred", None
    reason = text(data.get("reason"))
    if reason in SUPPRESSED_REASONS:
        return "dropped", None
    return "bounced", "soft" if reason in SOFT_PERMANENT_REASONS else "hard"


def _message_id(data: Mapping[str, Any]) -> str | None:
    ours = text(mapping(data.get("user-variables")).get(MESSAGE_ID_VARIABLE))
    headers = mapping(mapping(data.get("message")).get("headers"))
    return ours or bare_message_id(headers.get("message-id"))


def _reason(data: Mapping[str, Any]) -> str | None:
    status = mapping(data.get("delivery-status"))
    return (
        text(status.get("description"))
        or text(status.get("message"))
        or text(mapping(data.get("reject")).get("reason"))
        or text(data.get("reason"))
    )
