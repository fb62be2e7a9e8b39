"""Twilio SendGrid Event Webhook, signed.

Scheme (SendGrid, "Getting Started with the Event Webhook Security Features", section "The Signed Event
Webhook": https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
SendGrid signs ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body with ECDSA P-256 and
SHA-256 and sends the base64 DER signature in ``X-Twilio-Email-Event-Webhook-Signature``. The integration's
``verification_key`` is the public key SendGrid shows (base64 DER SubjectPublicKeyInfo; PEM is accepted
too); several keys may be given, separated by commas or newlines, during a rotation. SendGrid documents no
replay window; we refuse timestamps more than 5 minutes from our clock.

Payload (SendGrid, "Event Webhook Reference": https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
a JSON array of event objects, each with ``email``, ``timestamp`` (Unix seconds), ``event``, ``sg_event_id``
(unique per event: the dedupe key), ``sg_message_id``, ``smtp-id`` (deliverability events) and the
message's custom args at top level; ours is ``lma_message_id``. ``bounce`` events carry ``type``:
``"bounce"`` (a hard bounce) or ``"blocked"`` (the receiving server refused this message: soft).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from lma_bot.webhooks.providers import (
    bare_message_id,
    email_address,
    from_unix,
    load_json,
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

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MESSAGE_ID_ARG = "lma_message_id"  # the custom arg we send with every message

KINDS: dict[str, EmailEventKind] = {
    "processed": "processed",
    "deferred": "deferred",
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}

_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.DOTALL)
_SIGNED = ec.ECDSA(hashes.SHA256())


# --- verification --------------------------------------------------------------------------------------


def verify(headers: Headers, body: bytes, secrets: Mapping[str, str], now: float) -> Verified:
    keys = public_keys(secrets.get("verification_key"))
    timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise WebhookAuthError(f"{SIGNATURE_HEADER} or {TIMESTAMP_HEADER} missing")
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookAuthError("timestamp is not a number")
    if not within_window(int(timestamp), now):
        raise WebhookAuthError("timestamp outside the 5-minute window")
    der = _signature_bytes(signature)
    signed = timestamp.encode() + body
    if any(_verifies(key, der, signed) for key in keys):
        return Verified()
    raise WebhookAuthError("signature does not match any verification key")


def public_keys(value: str | None) -> list[ec.EllipticCurvePublicKey]:
    """The P-256 keys in ``verification_key``; :class:`WebhookAuthError` when there is none."""
    candidates = _key_texts(value or "")
    keys = [key for key in map(_load_key, candidates) if key is not None]
    if not keys:
        raise WebhookAuthError("integration has no usable verification_key (a P-256 public key)")
    return keys


def _key_texts(value: str) -> list[str]:
    if "-----BEGIN" in value:
        return ["".join(block.split()) for block in _PEM.findall(value)]
    return split_secrets(value)


@functools.lru_cache(maxsize=64)
def _load_key(encoded: str) -> ec.EllipticCurvePublicKey | None:
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


def _signature_bytes(signature: str) -> bytes:
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookAuthError("signature is not base64") from None
    if not der:
        raise WebhookAuthError("signature is empty")
    return der


def _verifies(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed, _SIGNED)
    except (InvalidSignature, ValueError):  # a wrong signature, or bytes that are not a DER signature
        return False
    return True


# --- the payload ---------------------------------------------------------------------------------------


def parse(body: bytes, content_type: str | None = None) -> list[EmailEvent]:
    document = load_json(body, content_type)
    if not isinstance(document, list):
        raise WebhookPayloadError("body must be a JSON array of events")
    return [_event(item, f"events[{index}]") for index, item in enumerate(document)]


def _event(item: object, where: str) -> EmailEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError(f"{where}: expected an object")
    event_id = text(item.get("sg_event_id"))
    if event_id is None:
        raise WebhookPayloadError(f"{where}: sg_event_id missing")
    raw_type = string(item.get("event"))
    if raw_type is None:
        raise WebhookPayloadError(f"{where}: event missing or not a string")
    kind = KINDS.get(raw_type, "unknown")
    return EmailEvent(
        provider_event_id=event_id,
        kind=kind,
        raw_type=raw_type,
        occurred_at=from_unix(item.get("timestamp"), f"{where}.timestamp"),
        message_id=_message_id(item),
        recipient=email_address(item.get("email")),
        bounce_type=_bounce_type(item) if kind == "bounced" else None,
        url=text(item.get("url")) if kind == "clicked" else None,
        reason=_reason(item) if kind in ("bounced", "dropped", "deferred") else None,
        payload=item,
    )


def _message_id(item: Mapping[str, Any]) -> str | None:
    return text(item.get(MESSAGE_ID_ARG)) or bare_message_id(item.get("smtp-id"))


def _bounce_type(item: Mapping[str, Any]) -> Literal["hard", "soft"]:
    return "soft" if text(item.get("type")) == "blocked" else "hard"


def _reason(item: Mapping[str, Any]) -> str | None:
    return text(item.get("reason")) or text(item.get("response"))
