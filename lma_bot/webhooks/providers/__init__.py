"""Email-provider webhooks: one module per provider, each with ``verify`` and ``parse`` (see ``types``).

- :mod:`~lma_bot.webhooks.providers.sendgrid`: Twilio SendGrid Signed Event Webhook (ECDSA P-256);
- :mod:`~lma_bot.webhooks.providers.mailgun`: Mailgun webhooks, JSON ``event-data`` format (HMAC-SHA256);
- :mod:`~lma_bot.webhooks.providers.postmark`: Postmark webhooks (HTTP Basic auth in the webhook URL).

:func:`get_provider` finds a module by the name stored in ``integrations.provider_name``. The helpers below
are what the three modules share: secret lists, JSON bodies, timestamps, addresses and message ids.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
from collections.abc import Mapping
from typing import Any, Protocol, cast

from lma_bot.webhooks.types import EmailEvent, Headers, Verified, WebhookPayloadError

EMAIL_PROVIDERS = ("sendgrid", "mailgun", "postmark")
WINDOW_SECONDS = 300  # how far a signed timestamp may be from our clock, either way


class EmailProvider(Protocol):
    """What every provider module offers (a module satisfies this protocol)."""

    def verify(self, headers: Headers, body: bytes, secrets: Mapping[str, str], now: float) -> Verified: ...

    def parse(self, body: bytes, content_type: str | None) -> list[EmailEvent]: ...


def get_provider(name: str) -> EmailProvider:
    """The provider module called ``name`` (one of :data:`EMAIL_PROVIDERS`); ``KeyError`` for any other."""
    if name not in EMAIL_PROVIDERS:
        raise KeyError(f"unknown email provider {name!r}; one of {', '.join(EMAIL_PROVIDERS)}")
    return cast(EmailProvider, importlib.import_module(f"{__name__}.{name}"))


def split_secrets(value: str | None) -> list[str]:
    """The keys in a secret value: several may be separated by commas or newlines (rotation)."""
    return [s.strip() for s in (value or "").replace("\n", ",").split(",") if s.strip()]


def within_window(timestamp: float, now: float, window: float = WINDOW_SECONDS) -> bool:
    return abs(now - timestamp) <= window


def load_json(body: bytes, content_type: str | None) -> Any:
    """The decoded body; :class:`WebhookPayloadError` when it is not UTF-8 JSON, or holds what PostgreSQL's
    ``jsonb`` cannot store (``NaN`` and ``Infinity``, which Python's json reads, or a NUL character in a
    string): refused here with a 400, not at the commit a flush shares with other deliveries."""
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        sent = f" (Content-Type {content_type!r})" if content_type else ""
        raise WebhookPayloadError(f"body is not JSON{sent}: {exc}") from None
    if b"\\u0000" in body and _has_nul(document):
        raise WebhookPayloadError("body holds a NUL character (\\u0000), which cannot be stored")
    return document


def _no_constant(name: str) -> Any:
    raise WebhookPayloadError(f"body is not JSON: {name} is not a JSON number")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def is_number(value: object) -> bool:
    """A finite JSON number (``true``/``false`` are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def from_unix(value: object, where: str) -> dt.datetime:
    """A Unix timestamp (seconds, int, float or numeric string) as an aware UTC datetime."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise WebhookPayloadError(f"{where}: not a Unix timestamp: {value!r}") from None
    if not is_number(value):
        raise WebhookPayloadError(f"{where}: missing or not a Unix timestamp")
    try:
        return dt.datetime.fromtimestamp(cast(float, value), tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookPayloadError(f"{where}: Unix timestamp out of range: {value!r}") from None


def from_iso(value: object, where: str) -> dt.datetime:
    """An ISO 8601 date-time (any offset; naive means UTC) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise WebhookPayloadError(f"{where}: missing")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise WebhookPayloadError(f"{where}: not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def string(value: object) -> str | None:
    """A non-empty string, stripped; anything else ``None`` (for names such as event types)."""
    return (value.strip() or None) if isinstance(value, str) else None


def text(value: object) -> str | None:
    """A non-empty string, stripped; numbers as their text; anything else ``None`` (for ids and values)."""
    if isinstance(value, str):
        return string(value)
    if is_number(value):
        return str(value)
    return None


def email_address(value: object) -> str | None:
    address = text(value)
    return address.lower() if address else None


def bare_message_id(value: object) -> str | None:
    """A Message-ID without its angle brackets (``<abc@example.com>`` -> ``abc@example.com``)."""
    message_id = text(value)
    if message_id is None:
        return None
    return message_id.removeprefix("<").removesuffix(">").strip() or None


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (for optional nested objects)."""
    return cast(Mapping[str, Any], value) if isinstance(value, dict) else {}
