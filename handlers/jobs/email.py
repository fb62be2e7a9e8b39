"""Scheduler jobs that send outbound email: claim due ids from ``outbound_emails``, record the send intent in
PostgreSQL, talk SMTP, mark the ``communications`` row sent / failed / queued again with backoff. See
:mod:`lma_bot.email.outbox` for the states and the one at-least-once window SMTP leaves, and
:mod:`lma_bot.email.smtp` for which failures are permanent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from handlers.jobs import JobContext
from lma_bot.config import Settings
from lma_bot.crypto import SecretBox, SecretDecryptError
from lma_bot.db import Database
from lma_bot.email import outbox
from lma_bot.email.queue import EmailMember, OutboxQueue
from lma_bot.email.smtp import (
    PermanentSmtpError,
    SmtpError,
    SmtpTarget,
    TransientSmtpError,
    send_message,
)
from lma_bot.failpoints import failpoint
from lma_bot.queues import Later, Nothing
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.webhooks.providers import mailgun, postmark, sendgrid

log = logging.getLogger(__name__)

#: A claim's lease: longer than a send may take (SEND_DEADLINE), so a live process keeps its claim.
CLAIM_LEASE_SECONDS = 300.0
#: The whole SMTP conversation of one email is cut off after this; far inside outbox.SEND_TIMEOUT.
SEND_DEADLINE = 90.0
#: No SMTP server for an organization: its emails wait (nothing is attempted) and are looked at again then.
NO_SERVER_RETRY = dt.timedelta(minutes=5)
TARGET_CACHE_SECONDS = 60.0


@dataclass
class EmailDispatcher:
    settings: Settings
    database: Database
    redis: AnyRedis
    keys: RedisKeys
    concurrency: int = 8
    claim_limit: int = 100
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    send_deadline: float = SEND_DEADLINE
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _targets: dict[int, tuple[float, SmtpTarget | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue = OutboxQueue(self.redis, self.keys)
        keys = self.settings.encryption_keys
        self.box = SecretBox(keys) if keys else None
        self.default_target: SmtpTarget | None = None
        if self.settings.smtp_url:
            try:
                self.default_target = SmtpTarget.from_url(self.settings.smtp_url)
            except ValueError as exc:
                log.error("email.config_invalid variable=SMTP_URL problem=%s", exc)

    # -- the jobs --------------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Claim the emails that may go now and send them; returns how many queue members were handled."""
        return await self.queue.run_claimed(
            now=self.clock(),
            lease=CLAIM_LEASE_SECONDS,
            limit=self.claim_limit,
            concurrency=self.concurrency,
            handle=self._handle,
        )

    async def reconcile(self) -> int:
        """Put back into Redis every email PostgreSQL still has queued and Redis lost."""
        return await self.queue.rebuild(
            self.database, lambda session, org_id: outbox.pending(session, org_id=org_id)
        )

    # -- one email ------------------------------------------------------------------------------------

    async def _handle(self, member: EmailMember) -> None:
        org_id = member.organization_id
        target = await self._target(org_id)
        if target is None:
            log.warning("email.no_smtp_server org=%d: set SMTP_URL (or an smtp integration)", org_id)
            await self.queue.retry_at(member, self.clock() + NO_SERVER_RETRY)
            return
        async with self.database.uow(org_id) as session:
            step = await outbox.begin_send(
                session, org_id=org_id, communication_id=member.communication_id, now=self.clock()
            )
        if isinstance(step, Later):
            await self.queue.retry_at(member, step.at)
            return
        if isinstance(step, Nothing):
            await self.queue.done(member)
            return
        failpoint("email.after_intent")
        if step.recovering:
            log.warning(
                "email.recovering member=%s message_id=%s: an earlier attempt died mid-send; "
                "sending again with the same Message-ID",
                member,
                step.envelope.message_id,
            )
        try:
            message, sender = self._compose(step.envelope, target)
            async with asyncio.timeout(self.send_deadline):
                reply = await send_message(target, message, sender=sender, recipient=step.envelope.to)
        except PermanentSmtpError as exc:
            await self._fail(member, step, exc.reason)
            return
        except TransientSmtpError as exc:
            await self._back_off(member, step, exc.reason)
            return
        except TimeoutError:
            await self._back_off(member, step, f"no answer from {target} within {self.send_deadline:.0f} s")
            return
        except SmtpError as exc:
            await self._back_off(member, step, exc.reason)
            return
        failpoint("email.after_send")
        async with self.database.uow(org_id) as session:
            ours = await outbox.finish_sent(
                session,
                org_id=org_id,
                communication_id=member.communication_id,
                send_key=step.send_key,
                reply=reply,
                now=self.clock(),
            )
        if not ours:
            log.warning("email.sent.superseded member=%s", member)
        log.info("email.sent member=%s message_id=%s via=%s", member, step.envelope.message_id, target)
        await self.queue.done(member)

    def _compose(self, env: outbox.Envelope, target: SmtpTarget) -> tuple[EmailMessage, str]:
        """The message and its envelope sender. With a ``from`` on the server (a shared relay), that is
        the From and the rep is Reply-To; otherwise the rep's own address is the From."""
        sender = target.sender or env.from_email
        if not sender and target.username and "@" in target.username:
            sender = target.username
        if not sender:
            raise TransientSmtpError(
                f"no sender address: the email has no user and {target} has no ?from=address"
            )
        message = EmailMessage()
        message["Message-ID"] = outbox.message_id_header(env.message_id)
        # the id again where each provider echoes it in its events (custom arg / variable / metadata), so
        # correlation survives a provider that replaces the Message-ID; plain SMTP servers ignore them
        message["X-SMTPAPI"] = json.dumps({"unique_args": {sendgrid.MESSAGE_ID_ARG: env.message_id}})
        message["X-Mailgun-Variables"] = json.dumps({mailgun.MESSAGE_ID_VARIABLE: env.message_id})
        message[f"X-PM-Metadata-{postmark.MESSAGE_ID_METADATA}"] = env.message_id
        message["Date"] = formatdate(self.clock().timestamp(), usegmt=True)
        message["From"] = formataddr((env.from_name or "", sender))
        if env.from_email and env.from_email.lower() != sender.lower():
            message["Reply-To"] = formataddr((env.from_name or "", env.from_email))
        message["To"] = env.to
        message["Subject"] = env.subject
        message.set_content(env.body)
        return message, sender

    async def _fail(self, member: EmailMember, step: outbox.Send, reason: str) -> None:
        async with self.database.uow(member.organization_id) as session:
            await outbox.finish_failed(
                session,
                org_id=member.organization_id,
                communication_id=member.communication_id,
                send_key=step.send_key,
                reason=reason,
            )
        log.warning("email.failed member=%s attempt=%d reason=%s", member, step.attempt, reason)
        await self.queue.done(member)

    async def _back_off(self, member: EmailMember, step: outbox.Send, reason: str) -> None:
        delay = outbox.backoff_delay(step.attempt, base=self.backoff_base, cap=self.backoff_cap)
        retry_at = self.clock() + delay
        async with self.database.uow(member.organization_id) as session:
            row = await outbox.back_off(
                session,
                org_id=member.organization_id,
                communication_id=member.communication_id,
                send_key=step.send_key,
                reason=reason,
                retry_at=retry_at,
            )
        if row is not None and row.status == "scheduled":
            log.info(
                "email.retry member=%s attempt=%d in=%.1fs reason=%s",
                member,
                step.attempt,
                delay.total_seconds(),
                reason,
            )
            await self.queue.retry_at(member, retry_at)
            return
        if row is not None:
            log.warning("email.failed member=%s attempt=%d reason=%s", member, step.attempt, reason)
        await self.queue.done(member)

    async def _target(self, org_id: int) -> SmtpTarget | None:
        """The organization's own SMTP server (an ``smtp`` integration) or else ``SMTP_URL``."""
        cached = self._targets.get(org_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1] or self.default_target
        found = None
        if self.box is not None:
            try:
                async with self.database.uow(org_id) as session:
                    found = await outbox.organization_smtp(session, org_id=org_id, box=self.box)
            except (SecretDecryptError, ValueError, KeyError) as exc:  # one bad integration stops no one
                log.warning("email.org_smtp_unusable org=%d error=%s", org_id, type(exc).__name__)
        self._targets[org_id] = (time.monotonic() + TARGET_CACHE_SECONDS, found)
        return found or self.default_target


def email_for(ctx: JobContext) -> EmailDispatcher:
    """The job context's dispatcher (one per scheduler process)."""
    found = ctx.state.get("email")
    if not isinstance(found, EmailDispatcher):
        found = EmailDispatcher(settings=ctx.settings, database=ctx.database, redis=ctx.redis, keys=ctx.keys)
        ctx.state["email"] = found
    return found
