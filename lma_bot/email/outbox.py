"""Outbound email in PostgreSQL: queueing (in the caller's transaction), the states of a send, and what the
``outbound_emails`` queue must hold.

An outbound email is a ``communications`` row (``communication_type`` email, ``direction`` outbound) with the
``Message-ID`` we set (header ``<uuid@domain>``, stored bare as ``uuid@domain`` in ``message_id``, the form the
webhook gateway compares), so provider webhooks find it. It moves
``status`` scheduled -> completed / failed and ``delivery_status`` queued -> sent / failed; the webhook gateway
moves it further (delivered, opened, bounced, ...). The send bookkeeping lives in ``metadata.outbox``:
``attempts``, ``send_key`` and ``sending_since`` (the intent), ``last_error``; the addresses in
``metadata.email``. ``scheduled_at`` is when the next attempt may start (the queue's score).

A send is three steps, each its own short transaction around the SMTP call:

1. :func:`begin_send` locks the row and records the intent (a fresh ``send_key``, ``sending_since``,
   ``attempts + 1``). A row whose intent is younger than :data:`SEND_TIMEOUT` is nobody else's to send.
2. The caller talks SMTP (bounded well inside :data:`SEND_TIMEOUT`).
3. :func:`finish_sent`, :func:`finish_failed` or :func:`back_off`, each only if the intent is still ours.

SMTP has no idempotency key, so this is at-least-once in one window: a process that dies after the server's
``250`` and before step 3 leaves an intent that :func:`begin_send` hands out again once it is older than
:data:`SEND_TIMEOUT`, and the email is sent a second time with the **same** Message-ID (which receivers and
providers use to dedupe). If a provider event (``processed``/``delivered``) for that Message-ID arrived in
the meantime, the row is no longer ``queued`` and nothing is resent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.crypto import SecretBox
from lma_bot.email.queue import EmailMember, OutboxQueue
from lma_bot.email.smtp import SmtpTarget
from lma_bot.errors import Conflict, InvalidInput, NotFound
from lma_bot.leads import repository as leads
from lma_bot.models import Communication, Integration, User
from lma_bot.queues import Later, Nothing
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.validation import normalize_email

MAX_SUBJECT_LENGTH = 500
MAX_BODY_LENGTH = 200_000
#: A send (connect, TLS, auth, data, with its timeouts) is cut off well before this; an intent older than
#: it belongs to a process that died, and the email is handed out again.
SEND_TIMEOUT = dt.timedelta(seconds=180)
#: Transient failures are retried this many attempts in all, then the email fails.
MAX_ATTEMPTS = 8
#: The integration whose settings (host, port, from; password encrypted) override SMTP_URL for its org.
SMTP_PROVIDER = "smtp"
FALLBACK_DOMAIN = "lma-bot.invalid"


class EmailRefused(Conflict):
    """The lead must not be emailed (do-not-contact, an address known to bounce)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _is_outbound_email() -> Any:
    return (
        (Communication.communication_type == "email")
        & (Communication.direction == "outbound")
        & Communication.metadata_.has_key("outbox")
    )


@dataclass(frozen=True)
class QueuedEmail:
    organization_id: int
    communication_id: int
    message_id: str
    send_at: dt.datetime

    @property
    def member(self) -> EmailMember:
        return EmailMember(self.organization_id, self.communication_id)


def new_message_id(domain: str | None) -> str:
    """``uuid@domain``: unique, and ours. Stored like this, bare, because that is how the webhook gateway
    normalizes the ids providers report (``bare_message_id``); the header carries it as ``<uuid@domain>``."""
    host = (domain or "").strip().lower().strip(".") or FALLBACK_DOMAIN
    return f"{uuid.uuid4().hex}@{host}"


def message_id_header(message_id: str) -> str:
    """The ``Message-ID`` header value of a stored (bare) message id."""
    return f"<{message_id.removeprefix('<').removesuffix('>')}>"


def _header_text(value: str, *, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(f"an email needs a {field}", field=field)
    if "\r" in text or "\n" in text:
        raise InvalidInput(f"the {field} of an email must be one line", field=field)
    if len(text) > limit:
        raise InvalidInput(
            f"the {field} can be at most {limit} characters (this one has {len(text)})", field=field
        )
    return text


async def queue_email(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    user_id: int | None,
    subject: str,
    body: str,
    to: str | None = None,
    send_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> QueuedEmail:
    """Write the outbound email's ``communications`` row in the caller's transaction.

    The caller commits, then hands the result to :func:`push_queued` (a lost push is repaired by the
    reconcile job). Raises :class:`EmailRefused` for a do-not-contact lead or one whose address bounced,
    :class:`InvalidInput` for a bad address/subject/body, :class:`NotFound` for an unknown lead or user.
    """
    subject = _header_text(subject, field="subject", limit=MAX_SUBJECT_LENGTH)
    if not body.strip():
        raise InvalidInput("an email needs a body", field="body")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidInput(f"the body can be at most {MAX_BODY_LENGTH} characters", field="body")
    if send_at is not None and send_at.tzinfo is None:
        raise InvalidInput("send_at must be an aware time", field="send_at")
    lead = (await session.execute(leads.by_id(org_id, lead_id))).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    if lead.do_not_contact:
        raise EmailRefused(f"lead {lead.id} ({lead.display_name}) is marked do-not-contact: no email is sent")
    if lead.email_status == "invalid":
        raise EmailRefused(
            f"the email address of lead {lead.id} ({lead.display_name}) is marked invalid (it bounced): "
            "no email is sent"
        )
    address = to if to is not None else lead.email
    if not address:
        raise InvalidInput(f"lead {lead.id} has no email address", field="to")
    address = normalize_email(address, field="to")
    user = None
    if user_id is not None:
        user = await session.get(User, (org_id, user_id))
        if user is None:
            raise NotFound(f"user {user_id} not found")
    from_email = user.email if user is not None else None
    now = now or _now()
    at = send_at or now
    message_id = new_message_id(from_email.rpartition("@")[2] if from_email else None)
    comm = Communication(
        organization_id=org_id,
        lead_id=lead.id,
        user_id=user_id,
        communication_type="email",
        direction="outbound",
        subject=subject,
        content=body,
        status="scheduled",
        scheduled_at=at,
        delivery_status="queued",
        message_id=message_id,
        metadata_={
            "email": {
                "to": address,
                "from_email": from_email,
                "from_name": user.name if user is not None else None,
            },
            "outbox": {"attempts": 0, "send_key": None, "sending_since": None, "last_error": None},
        },
    )
    session.add(comm)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=user_id,
        lead_id=lead.id,
        activity_type="email.outbound.queued",
        entity_type="communication",
        entity_id=comm.id,
        after={"to": address, "subject": subject, "message_id": message_id, "send_at": at.isoformat()},
    )
    return QueuedEmail(org_id, comm.id, message_id, at)


async def push_queued(redis: AnyRedis, keys: RedisKeys, *emails: QueuedEmail) -> None:
    """After the commit: put the emails in the ``outbound_emails`` queue. Best effort by design: if Redis
    is away, the reconcile job queues them from PostgreSQL later."""
    queue = OutboxQueue(redis, keys)
    for email in emails:
        await queue.push(email.member, email.send_at)


async def get_email(
    session: AsyncSession, *, org_id: int, communication_id: int, lock: bool = False
) -> Communication:
    query = select(Communication).where(
        Communication.organization_id == org_id, Communication.id == communication_id, _is_outbound_email()
    )
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"outbound email {communication_id} not found")
    return found


def _outbox(comm: Communication) -> dict[str, Any]:
    return dict(comm.metadata_.get("outbox") or {})


def _set_outbox(comm: Communication, **changes: Any) -> None:
    comm.metadata_ = {**comm.metadata_, "outbox": {**_outbox(comm), **changes}}


def _sending_since(comm: Communication) -> dt.datetime | None:
    raw = _outbox(comm).get("sending_since")
    return dt.datetime.fromisoformat(raw) if raw else None


def _still_queued(comm: Communication) -> bool:
    return comm.status == "scheduled" and comm.delivery_status == "queued"


async def pending(session: AsyncSession, *, org_id: int) -> list[tuple[int, dt.datetime]]:
    """(id, time it may go) of every email of the organization still queued: what the Redis queue must hold."""
    rows = await session.execute(
        select(
            Communication.id,
            func.coalesce(Communication.scheduled_at, Communication.created_at),
            Communication.metadata_["outbox"]["sending_since"].astext,
        ).where(
            Communication.organization_id == org_id,
            _is_outbound_email(),
            Communication.status == "scheduled",
            Communication.delivery_status == "queued",
        )
    )
    out = []
    for cid, at, since in rows.tuples():
        if since:
            at = max(at, dt.datetime.fromisoformat(since) + SEND_TIMEOUT)
        out.append((int(cid), at))
    return out


# -- the states of a send ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """What to send: everything the SMTP step needs, read in the intent's transaction."""

    communication_id: int
    lead_id: int
    message_id: str
    to: str
    from_email: str | None
    from_name: str | None
    subject: str
    body: str


@dataclass(frozen=True)
class Send:
    envelope: Envelope
    send_key: str
    attempt: int
    recovering: bool  # an earlier intent was left behind: this may be a second send of the same Message-ID


async def begin_send(
    session: AsyncSession, *, org_id: int, communication_id: int, now: dt.datetime | None = None
) -> Send | Later | Nothing:
    """Record the intent to send under a row lock (or hand out a stale intent for recovery)."""
    now = now or _now()
    comm = (
        await session.execute(
            select(Communication)
            .where(
                Communication.organization_id == org_id,
                Communication.id == communication_id,
                _is_outbound_email(),
            )
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if comm is None:
        exists = (
            await session.execute(
                select(Communication.id).where(
                    Communication.organization_id == org_id, Communication.id == communication_id
                )
            )
        ).scalar_one_or_none()
        # another process holds the row this instant (its transactions are short): look again soon
        return Later(now + dt.timedelta(seconds=1)) if exists is not None else Nothing("gone")
    if not _still_queued(comm):
        return Nothing(f"{comm.status}/{comm.delivery_status}")
    since = _sending_since(comm)
    if since is not None and since + SEND_TIMEOUT > now:
        return Later(since + SEND_TIMEOUT)  # another process may be talking SMTP right now
    if since is None and comm.scheduled_at is not None and comm.scheduled_at > now + dt.timedelta(seconds=1):
        return Later(comm.scheduled_at)  # a backoff that Redis forgot, or a later send time
    outbox = _outbox(comm)
    attempt = int(outbox.get("attempts") or 0) + 1
    send_key = uuid.uuid4().hex
    _set_outbox(comm, attempts=attempt, send_key=send_key, sending_since=now.isoformat())
    if since is not None:
        _set_outbox(comm, recovered_intents=int(outbox.get("recovered_intents") or 0) + 1)
    addresses = comm.metadata_.get("email") or {}
    envelope = Envelope(
        communication_id=comm.id,
        lead_id=comm.lead_id,
        message_id=str(comm.message_id),
        to=str(addresses.get("to")),
        from_email=addresses.get("from_email"),
        from_name=addresses.get("from_name"),
        subject=comm.subject or "",
        body=comm.content or "",
    )
    return Send(envelope, send_key, attempt, since is not None)


async def _ours(
    session: AsyncSession, org_id: int, communication_id: int, send_key: str
) -> Communication | None:
    comm = await get_email(session, org_id=org_id, communication_id=communication_id, lock=True)
    return comm if _outbox(comm).get("send_key") == send_key else None


async def finish_sent(
    session: AsyncSession,
    *,
    org_id: int,
    communication_id: int,
    send_key: str,
    reply: str,
    now: dt.datetime | None = None,
) -> bool:
    """The server accepted it: delivery_status sent, status completed. False if the intent is not ours."""
    comm = await _ours(session, org_id, communication_id, send_key)
    if comm is None:
        return False
    now = now or _now()
    if comm.delivery_status == "queued":  # a provider event may already have moved it further
        comm.delivery_status = "sent"
    if comm.status == "scheduled":
        comm.status = "completed"
    if comm.completed_at is None:
        comm.completed_at = now
    attempts = int(_outbox(comm).get("attempts") or 0)
    _set_outbox(
        comm, send_key=None, sending_since=None, last_error=None, sent_at=now.isoformat(), reply=reply[:500]
    )
    await record(
        session,
        org_id=org_id,
        lead_id=comm.lead_id,
        activity_type="email.outbound.sent",
        entity_type="communication",
        entity_id=comm.id,
        after={"message_id": comm.message_id, "attempts": attempts},
    )
    return True


async def finish_failed(
    session: AsyncSession, *, org_id: int, communication_id: int, send_key: str, reason: str
) -> bool:
    """For good (a 5xx, or the retries ran out): delivery_status failed, status failed, with the reason."""
    comm = await _ours(session, org_id, communication_id, send_key)
    if comm is None:
        return False
    if _still_queued(comm):
        comm.status = "failed"
        comm.delivery_status = "failed"
    attempts = int(_outbox(comm).get("attempts") or 0)
    _set_outbox(
        comm, send_key=None, sending_since=None, last_error=reason[:1000], failure_reason=reason[:1000]
    )
    await record(
        session,
        org_id=org_id,
        lead_id=comm.lead_id,
        activity_type="email.outbound.failed",
        entity_type="communication",
        entity_id=comm.id,
        after={"reason": reason[:1000], "attempts": attempts, "message_id": comm.message_id},
    )
    return True


async def back_off(
    session: AsyncSession,
    *,
    org_id: int,
    communication_id: int,
    send_key: str,
    reason: str,
    retry_at: dt.datetime,
) -> Communication | None:
    """A transient failure: queued again for ``retry_at``, or failed once MAX_ATTEMPTS are spent. None if the
    intent is not ours."""
    comm = await _ours(session, org_id, communication_id, send_key)
    if comm is None:
        return None
    attempts = int(_outbox(comm).get("attempts") or 0)
    if attempts >= MAX_ATTEMPTS:
        await finish_failed(
            session,
            org_id=org_id,
            communication_id=communication_id,
            send_key=send_key,
            reason=f"gave up after {attempts} attempts: {reason}",
        )
        return comm
    comm.scheduled_at = retry_at
    _set_outbox(comm, send_key=None, sending_since=None, last_error=reason[:1000])
    return comm


def backoff_delay(attempt: int, *, base: float = 30.0, cap: float = 3600.0) -> dt.timedelta:
    """``base * 2**(attempt-1)`` seconds, capped: 30 s, 1 min, 2 min, 4 min ... 1 h by default."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


# -- per-organization SMTP ------------------------------------------------------------------------------


async def organization_smtp(
    session: AsyncSession, *, org_id: int, box: SecretBox | None
) -> SmtpTarget | None:
    """The organization's own SMTP server, when it has an active ``smtp`` integration: ``configuration``
    holds ``host``, ``port``, ``security`` (starttls | tls | none-if-not-offered: ``auto``), ``username``,
    ``from``; the password is in the encrypted secrets (``password``), or the whole URL (``smtp_url``)."""
    row = (
        await session.execute(
            select(Integration)
            .where(
                Integration.organization_id == org_id,
                Integration.provider_name == SMTP_PROVIDER,
                Integration.status == "active",
            )
            .order_by(Integration.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None or box is None:
        return None
    secrets = box.decrypt_json(row.encrypted_secrets) if row.encrypted_secrets else {}
    if secrets.get("smtp_url"):
        return SmtpTarget.from_url(str(secrets["smtp_url"]))
    config = row.configuration
    host = config.get("host")
    if not host:
        return None
    security = str(config.get("security") or "auto").lower()
    return SmtpTarget(
        hostname=str(host),
        port=int(config.get("port") or (465 if security == "tls" else 587)),
        implicit_tls=security == "tls",
        starttls="require" if security == "starttls" else "auto",
        username=str(config["username"]) if config.get("username") else None,
        password=str(secrets["password"]) if secrets.get("password") else None,
        sender=str(config["from"]) if config.get("from") else None,
    )
