"""Postmark webhooks.

Scheme (Postmark, "Webhooks overview", section "Protecting your webhook":
https://postmarkapp.com/developer/webhooks/webhooks-overview): Postmark signs nothing; the webhook URL
carries HTTP Basic credentials (``https://user:pass@host/...``), sent as ``Authorization: Basic ...``. We
compare them in constant time with the integration's ``basic_username`` and ``basic_password``; either may
hold several values (commas or newlines) during a rotation, and any username with any password is accepted.

Payload: one JSON object per request, told apart by ``RecordType`` (Postmark, "Delivery", "Bounce", "Spam
complaint", "Open tracking", "Click", "Subscription change" webhooks:
https://postmarkapp.com/developer/webhooks/bounce-webhook and siblings). ``MessageID`` is Postmark's id;
ours travels in ``Metadata.lma_message_id``. Postmark sends no event id, so the dedupe key is built from
``RecordType``, ``MessageID``, the recipient, the event's own timestamp and, for bounces, the bounce ``ID``:
a retry of one event repeats all of them, a second open at another time does not.

Bounce ``Type`` (Postmark, "Bounce types": https://postmarkapp.com/developer/api/bounce-api#bounce-types)
decides the kind: see :data:`BOUNCE_TYPES`. A ``SubscriptionChange`` that suppresses sending is an
unsubscribe, unless its ``SuppressionReason`` is ``HardBounce`` (a hard bounce, as broadcast streams report
them) or ``SpamComplaint``; one that lifts a suppression is ``unknown``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal

from lma_bot.webhooks.providers import (
    email_address,
    from_iso,
    load_json,
    mapping,
    split_secrets,
    string,
    text,
)
from lma_bot.webhooks.types import (
    EmailEvent,
    EmailEventKind,
    Headers,
    Verified,
    WebhookAuthError,
    WebhookPayloadError,
)

MESSAGE_ID_METADATA = "lma_message_id"  # the Metadata key we send with every message
MAX_EVENT_ID = 255  # webhook_events.provider_event_id

Classified = tuple[EmailEventKind, Literal["hard", "soft"] | None]

#: Where each RecordType keeps its timestamp.
TIMESTAMP_FIELDS = {
    "Delivery": "DeliveredAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "SubscriptionChange": "ChangedAt",
}
KINDS: dict[str, EmailEventKind] = {
    "Delivery": "delivered",
    "SpamComplaint": "complained",
    "Open": "opened",
    "Click": "clicked",
}
#: Bounce ``Type`` -> kind. Hard: the address does not work. Soft: this message was refused (full mailbox,
#: blocked content or sender, DMARC). Transient and DNS errors are delays. Any other type
#: (AutoResponder, AddressChange, ChallengeVerification, Subscribe, Unconfirmed, OpenRelayTest,
#: InboundError, Unknown, ...) is not about deliverability: ``unknown``.
BOUNCE_TYPES: dict[str, Classified] = {
    "HardBounce": ("bounced", "hard"),
    "BadEmailAddress": ("bounced", "hard"),
    "SoftBounce": ("bounced", "soft"),
    "Blocked": ("bounced", "soft"),
    "DMARCPolicy": ("bounced", "soft"),
    "SpamNotification": ("bounced", "soft"),
    "VirusNotification": ("bounced", "soft"),
    "Transient": ("deferred", None),
    "DnsError": ("deferred", None),
    "SpamComplaint": ("complained", None),
    "Unsubscribe": ("unsubscribed", None),
    "ManuallyDeactivated": ("dropped", None),
    "SMTPApiError": ("dropped", None),
    "TemplateRenderingFailed": ("dropped", None),
}
SUPPRESSION_REASONS: dict[str, Classified] = {
    "HardBounce": ("bounced", "hard"),
    "SpamComplaint": ("complained", None),
}


# --- verification --------------------------------------------------------------------------------------


def verify(headers: Headers, body: bytes, secrets: Mapping[str, str], now: float) -> Verified:
    usernames = split_secrets(secrets.get("basic_username"))
    passwords = split_secrets(secrets.get("basic_password"))
    if not usernames or not passwords:
        raise WebhookAuthError("integration has no basic_username / basic_password")
    username, password = basic_credentials(headers.get("Authorization"))
    if _one_of(username, usernames) & _one_of(password, passwords):
        return Verified()
    raise WebhookAuthError("basic auth credentials do not match")


def basic_credentials(header: str | None) -> tuple[str, str]:
    """``(username, password)`` from an ``Authorization: Basic`` header; :class:`WebhookAuthError` else."""
    if not header:
        raise WebhookAuthError("Authorization missing: put the credentials in the webhook URL")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise WebhookAuthError("Authorization is not HTTP Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        raise WebhookAuthError("Basic credentials are not base64 UTF-8") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise WebhookAuthError("Basic credentials have no ':'")
    return username, password


def _one_of(offered: str, candidates: list[str]) -> bool:
    """Constant-time membership: every candidate is compared, whatever matches."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(offered.encode(), candidate.encode())
    return matched


# --- the payload ---------------------------------------------------------------------------------------


def parse(body: bytes, content_type: str | None = None) -> list[EmailEvent]:
    document = load_json(body, content_type)
    if not isinstance(document, dict):
        raise WebhookPayloadError("body must be a JSON object (Postmark sends one event per request)")
    record_type = string(document.get("RecordType"))
    if record_type is None:
        raise WebhookPayloadError("RecordType missing or not a string")
    if record_type not in TIMESTAMP_FIELDS:
        return [_unknown(record_type, document)]
    return [_event(record_type, document)]


def _event(record_type: str, document: dict[str, Any]) -> EmailEvent:
    stamp_field = TIMESTAMP_FIELDS[record_type]
    occurred_at = from_iso(document.get(stamp_field), stamp_field)
    kind, bounce_type = classify(record_type, document)
    recipient = email_address(document.get("Email")) or email_address(document.get("Recipient"))
    return EmailEvent(
        provider_event_id=event_id(record_type, document, recipient, str(document[stamp_field])),
        kind=kind,
        raw_type=record_type,
        occurred_at=occurred_at,
        message_id=_message_id(document),
        recipient=recipient,
        bounce_type=bounce_type,
        url=text(document.get("OriginalLink")) if kind == "clicked" else None,
        reason=_reason(document) if kind in ("bounced", "dropped", "deferred") else None,
        payload=document,
    )


def _unknown(record_type: str, document: dict[str, Any]) -> EmailEvent:
    """A RecordType we do not know: stored and ignored, keyed by its content."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    stamps = [document[f] for f in ("ReceivedAt", "DeliveredAt", "BouncedAt", "ChangedAt") if f in document]
    occurred_at = from_iso(stamps[0], "timestamp") if stamps else dt.datetime.now(dt.UTC)
    return EmailEvent(
        provider_event_id="sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        kind="unknown",
        raw_type=record_type,
        occurred_at=occurred_at,
        message_id=_message_id(document),
        recipient=email_address(document.get("Email")) or email_address(document.get("Recipient")),
        payload=document,
    )


def classify(record_type: str, document: Mapping[str, Any]) -> Classified:
    """Our kind (and bounce type) for a Postmark event of a known RecordType."""
    if record_type == "Bounce":
        return BOUNCE_TYPES.get(string(document.get("Type")) or "", ("unknown", None))
    if record_type == "SubscriptionChange":
        if document.get("SuppressSending") is not True:
            return "unknown", None
        reason = string(document.get("SuppressionReason")) or ""
        return SUPPRESSION_REASONS.get(reason, ("unsubscribed", None))
    return KINDS[record_type], None


def event_id(record_type: str, document: Mapping[str, Any], recipient: str | None, stamp: str) -> str:
    """The dedupe key: RecordType, MessageID, recipient, timestamp (+ bounce ID); hashed if too long."""
    message = text(document.get("MessageID"))
    if message is None and recipient is None:
        raise WebhookPayloadError("MessageID missing")
    parts = [record_type, message or "", recipient or "", stamp]
    bounce_id = text(document.get("ID"))
    if record_type in ("Bounce", "SpamComplaint") and bounce_id is not None:
        parts.append(bounce_id)
    key = ":".join(parts)
    if len(key) <= MAX_EVENT_ID:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _message_id(document: Mapping[str, Any]) -> str | None:
    ours = text(mapping(document.get("Metadata")).get(MESSAGE_ID_METADATA))
    return ours or text(document.get("MessageID"))


def _reason(document: Mapping[str, Any]) -> str | None:
    return (
        text(document.get("Details"))
        or text(document.get("Description"))
        or text(document.get("SuppressionReason"))
    )
