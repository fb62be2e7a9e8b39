"""Requests from the email providers, built and signed the way each provider builds and signs them.

Fixtures (``tests/fixtures/webhooks/<provider>/<event>__<variant>.json``) hold unsigned payloads built from
each provider's documented examples: for SendGrid a JSON array of events (the whole body), for Mailgun the
``event-data`` object (:func:`mailgun_body` adds the signature block), for Postmark the one event object.

- **SendGrid** (Signed Event Webhook): ECDSA P-256 / SHA-256 over ``timestamp + body``, base64 DER in
  ``X-Twilio-Email-Event-Webhook-Signature``. :func:`sendgrid_key` makes a key pair; its
  ``verification_key`` is what SendGrid's console shows (base64 DER SubjectPublicKeyInfo).
- **Mailgun**: hex HMAC-SHA256 of ``timestamp + token`` keyed with the webhook signing key, in the body.
- **Postmark**: HTTP Basic credentials from the webhook URL, in ``Authorization``.

Signing is implemented here independently of ``lma_bot.webhooks.providers``, so the tests check one
against the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
JSON = "application/json"
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


# --- fixtures ------------------------------------------------------------------------------------------


def fixture_path(provider: str, name: str) -> Path:
    return FIXTURES / provider / f"{name.removesuffix('.json')}.json"


def load_fixture(provider: str, name: str) -> Any:
    """The decoded fixture ``<provider>/<name>.json`` (a list for SendGrid, else a dict)."""
    return json.loads(fixture_path(provider, name).read_text(encoding="utf-8"))


def fixture_names(provider: str) -> list[str]:
    """Every fixture of ``provider``, by name without ``.json``, sorted."""
    return sorted(path.stem for path in (FIXTURES / provider).glob("*.json"))


def json_body(document: Any) -> bytes:
    """``document`` as a request body (compact JSON, UTF-8)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# --- SendGrid ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendgridKey:
    private_key: ec.EllipticCurvePrivateKey
    verification_key: str  # base64 DER SubjectPublicKeyInfo, as SendGrid's console shows it

    @property
    def pem(self) -> str:
        """The public key as PEM (what some admins paste instead)."""
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


def sendgrid_key() -> SendgridKey:
    """A fresh P-256 key pair."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SendgridKey(private_key, base64.b64encode(der).decode())


def sendgrid_signature(body: bytes, private_key: ec.EllipticCurvePrivateKey, timestamp: int | str) -> str:
    """The base64 DER ECDSA signature SendGrid sends for ``body`` at ``timestamp``."""
    der = private_key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode()


def sign_sendgrid(
    body: bytes, private_key: ec.EllipticCurvePrivateKey, timestamp: int | str
) -> dict[str, str]:
    """The headers SendGrid sends with ``body``: content type, timestamp and signature."""
    return {
        "Content-Type": JSON,
        SENDGRID_TIMESTAMP: str(timestamp),
        SENDGRID_SIGNATURE: sendgrid_signature(body, private_key, timestamp),
    }


def sendgrid_request(
    events: list[dict[str, Any]], private_key: ec.EllipticCurvePrivateKey, timestamp: int | str
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a signed SendGrid POST carrying ``events``."""
    body = json_body(events)
    return body, sign_sendgrid(body, private_key, timestamp)


# --- Mailgun -------------------------------------------------------------------------------------------


def mailgun_token() -> str:
    """A fresh token like Mailgun's: 50 random hex characters."""
    return secrets.token_hex(25)


def mailgun_signature(signing_key: str, timestamp: int | str, token: str) -> str:
    message = f"{timestamp}{token}".encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


def mailgun_document(
    event_data: dict[str, Any], signing_key: str, timestamp: int | str, token: str | None = None
) -> dict[str, Any]:
    """The JSON document Mailgun posts: ``signature`` block (fresh token by default) + ``event-data``."""
    token = mailgun_token() if token is None else token
    signature = {
        "timestamp": str(timestamp),
        "token": token,
        "signature": mailgun_signature(signing_key, timestamp, token),
    }
    return {"signature": signature, "event-data": event_data}


def mailgun_body(
    event_data: dict[str, Any], signing_key: str, timestamp: int | str, token: str | None = None
) -> bytes:
    """The body Mailgun posts for ``event_data``, signed with ``signing_key`` at ``timestamp``."""
    return json_body(mailgun_document(event_data, signing_key, timestamp, token))


def mailgun_request(
    event_data: dict[str, Any], signing_key: str, timestamp: int | str, token: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a signed Mailgun POST."""
    return mailgun_body(event_data, signing_key, timestamp, token), {"Content-Type": JSON}


# --- Postmark ------------------------------------------------------------------------------------------


def postmark_headers(username: str, password: str) -> dict[str, str]:
    """What Postmark sends for a webhook URL ``https://username:password@host/...``."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Content-Type": JSON, "Authorization": f"Basic {credentials}"}


def postmark_request(event: dict[str, Any], username: str, password: str) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a Postmark POST carrying ``event``."""
    return json_body(event), postmark_headers(username, password)
