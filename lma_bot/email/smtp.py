"""Sending one email over SMTP with aiosmtplib, and what its failures mean.

Where: ``SMTP_URL`` (``smtp://user:pass@host:587``: plain connection upgraded with STARTTLS whenever the server
offers it; ``smtps://user:pass@host:465``: implicit TLS), or an organization's own ``smtp`` integration whose
password is stored encrypted (see :mod:`lma_bot.email.outbox`). Optional query parameters: ``from`` (the
envelope and header sender used when the email names none), ``timeout`` (seconds per SMTP command, default 30),
``starttls=require`` (refuse to send in clear text) or ``starttls=off``.

The password lives only in :class:`SmtpTarget` and is never part of its ``repr``, a log line or a stored
failure reason (:meth:`SmtpTarget.redact` scrubs it from server replies too).

Failures are classified: a 5xx reply to the message (sender, recipient or data refused) is permanent and
fails the email at once with the reply as the reason; 4xx replies, connection errors, timeouts and
authentication or TLS problems (fixable on the server side, not by changing the email) are transient and
retried with backoff up to a cap.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

DEFAULT_TIMEOUT = 30.0


class SmtpError(Exception):
    """A send that did not succeed; ``reason`` is safe to store and show (no secrets)."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PermanentSmtpError(SmtpError):
    """The server refused this message for good (5xx): retrying will not help."""


class TransientSmtpError(SmtpError):
    """Try again later: 4xx, connection trouble, timeout, authentication or TLS trouble."""


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    implicit_tls: bool = False
    starttls: str = "auto"  # auto (when offered), require, off
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        """Parse ``smtp[s]://[user[:password]@]host[:port][?from=...&timeout=...&starttls=...]``."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("expected smtp://user:pass@host:587 or smtps://user:pass@host:465")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "auto").lower()
        if starttls not in ("auto", "require", "off"):
            raise ValueError("starttls must be auto, require or off")
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
            port = parts.port
        except ValueError:
            raise ValueError("the port and timeout of SMTP_URL must be numbers") from None
        return cls(
            hostname=parts.hostname,
            port=port or (465 if scheme == "smtps" else 587),
            implicit_tls=scheme == "smtps",
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            sender=query.get("from") or None,
            timeout=timeout,
        )

    def __str__(self) -> str:
        """``smtp://user@host:port``: what logs may show (never the password)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{user}{self.hostname}:{self.port}"

    def redact(self, text: str) -> str:
        """``text`` with the password (plain, or in an AUTH PLAIN/LOGIN encoding) replaced by ``***``."""
        if not self.password:
            return text
        secrets = {self.password, base64.b64encode(self.password.encode()).decode()}
        if self.username:
            plain = f"\0{self.username}\0{self.password}".encode()
            secrets.add(base64.b64encode(plain).decode())
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


async def send_message(target: SmtpTarget, message: EmailMessage, *, sender: str, recipient: str) -> str:
    """Deliver ``message`` to ``recipient``; returns the server's reply to the data. Raises
    :class:`PermanentSmtpError` or :class:`TransientSmtpError` with a reason free of secrets."""
    options: dict[str, Any] = {
        "hostname": target.hostname,
        "port": target.port,
        "timeout": target.timeout,
        "use_tls": target.implicit_tls,
        "start_tls": None if target.starttls == "auto" else target.starttls == "require",
    }
    if target.implicit_tls:
        options["start_tls"] = False
    if target.tls_context is not None:
        options["tls_context"] = target.tls_context
    if target.username:
        options["username"] = target.username
        options["password"] = target.password or ""
    try:
        errors, reply = await aiosmtplib.send(message, sender=sender, recipients=[recipient], **options)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            raise TransientSmtpError("every recipient was refused") from None
        raise _classified(refused, f"recipient refused: {_reply(refused)}", target) from None
    except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused) as exc:
        what = {
            aiosmtplib.SMTPSenderRefused: "sender refused",
            aiosmtplib.SMTPDataError: "message refused",
            aiosmtplib.SMTPRecipientRefused: "recipient refused",
        }[type(exc)]
        raise _classified(exc, f"{what}: {_reply(exc)}", target) from None
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise TransientSmtpError(
            target.redact(f"authentication failed at {target}: {_reply(exc)}"), code=exc.code
        ) from None
    except aiosmtplib.SMTPResponseException as exc:  # HELO, connect greeting, other replies
        raise _classified(exc, f"server replied {_reply(exc)}", target, permanent_5xx=False) from None
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        raise TransientSmtpError(f"timed out talking to {target}") from None
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        detail = target.redact(str(exc) or type(exc).__name__)
        raise TransientSmtpError(f"{type(exc).__name__} at {target}: {detail}") from None
    if errors:  # one recipient only: a refusal raises above, so this is a server quirk
        raise TransientSmtpError(target.redact(f"recipient not accepted: {errors}"))
    return target.redact(reply)


def _classified(
    exc: aiosmtplib.SMTPResponseException, reason: str, target: SmtpTarget, *, permanent_5xx: bool = True
) -> SmtpError:
    reason = target.redact(reason)
    if 500 <= exc.code < 600 and permanent_5xx:
        return PermanentSmtpError(reason, code=exc.code)
    return TransientSmtpError(reason, code=exc.code)
