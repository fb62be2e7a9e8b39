"""Scheduler jobs that deliver reminders: claim due ids from Redis, record the send intent in PostgreSQL,
DM the person reminded, mark it sent. See :mod:`lma_bot.reminders.service` for why this is exactly-once.

Slack etiquette: about one message per second per DM channel across every scheduler process (a Redis
``SET NX PX`` slot per channel; a reminder whose channel is busy goes back to the queue for when the slot
frees, holding no worker), ``Retry-After`` honoured on 429, permanent errors fail the reminder with the
reason (its creator is told), transient ones retry with backoff up to a cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.jobs import JobContext
from handlers.slack.blocks.reminders import (
    METADATA_EVENT,
    digest_blocks,
    reminder_dm,
    reminder_failed_dm,
    reminder_text,
)
from handlers.slack.clients import BotClients
from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.errors import NotFound
from lma_bot.failpoints import failpoint
from lma_bot.models import Lead, Reminder, User
from lma_bot.queues import Later, Nothing
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.reminders import service
from lma_bot.reminders.digest import claim_digests
from lma_bot.reminders.queue import DueQueue, Member
from lma_bot.reminders.quiet import next_allowed

log = logging.getLogger(__name__)

#: Slack errors that no retry will fix.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "account_inactive",
        "token_revoked",
        "not_in_channel",
        "invalid_auth",
        "not_authed",
        "user_disabled",
        "cannot_dm_bot",
        "is_archived",
        "missing_scope",
        "team_access_not_granted",
    }
)
#: A Retry-After up to this long is waited out in place (holding the send intent); longer goes back to
#: the queue. Both stay far inside service.SEND_TIMEOUT.
MAX_INLINE_RETRY_AFTER = 20.0
CLAIM_LEASE_SECONDS = 120.0
#: How long a claimed member may wait in this process's memory for its channel before going back to Redis
#: (well inside the claim's lease).
MAX_HOLD_SECONDS = 60.0


class _NotYourTurn(Exception):
    def __init__(self, wait: float, *, paced: bool = False) -> None:
        self.wait = wait
        self.paced = paced  # the DM channel's slot: wait in memory, not in Redis


@dataclass(frozen=True)
class _Delivery:
    member: Member
    send: service.Send
    recipient_slack_id: str
    text: str
    blocks: list[dict[str, Any]]
    creator_slack_id: str | None
    lead_id: int
    lead_name: str
    recipient_name: str


@dataclass
class ReminderDispatcher:
    settings: Settings
    database: Database
    redis: AnyRedis
    keys: RedisKeys
    concurrency: int = 8
    claim_limit: int = 200
    pace_seconds: float = 1.0
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clients: BotClients | None = None

    def __post_init__(self) -> None:
        self.queue = DueQueue(self.redis, self.keys)
        if self.clients is None:
            self.clients = BotClients(self.settings, self.database)
        # Continuous dispatch: claimed members wait in memory for a worker; a member whose DM channel is
        # busy (pacing) waits in memory for the channel's next slot instead of going back to Redis.
        self._work: asyncio.Queue[Member] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._held: dict[Member, float] = {}  # member -> monotonic time it was claimed
        self._channel_of: dict[Member, str] = {}  # DM channel learned on a paced attempt
        self._timers: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- the jobs --------------------------------------------------------------------------------------

    async def pump(self) -> int:
        """Claim what is due, up to what the workers can hold, and hand it to them; returns at once.

        The scheduler runs this every second; work continues between runs, so a slow member (a busy
        channel, a slow Slack) never holds back the next claim.
        """
        self._start_workers()
        room = self.claim_limit - len(self._held)
        if room <= 0:
            return 0
        members = await self.queue.claim(now=self.clock(), lease=CLAIM_LEASE_SECONDS, limit=room)
        for member in members:
            if member in self._held:
                continue  # our own claim came back (lease expired while held): already in hand
            self._held[member] = time.monotonic()
            self._idle.clear()
            self._work.put_nowait(member)
        return len(members)

    async def tick(self) -> int:
        """Claim what is due and wait until every claimed member is handled (tests, `--once` runs)."""
        claimed = await self.pump()
        await self._idle.wait()
        return claimed

    async def close(self) -> None:
        tasks = [*self._timers, *self._workers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []

    def _start_workers(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def _worker(self) -> None:
        while True:
            member = await self._work.get()
            wait = 0.0
            try:
                wait = await self._handle(member)
            except Exception:  # stays claimed in Redis: its lease brings it back
                log.exception("reminder.dispatch.error member=%s", member)
            if wait > 0 and time.monotonic() - self._held.get(member, 0.0) + wait < MAX_HOLD_SECONDS:
                timer = asyncio.create_task(self._requeue(member, wait))
                self._timers.add(timer)
                timer.add_done_callback(self._timers.discard)
                continue
            if wait > 0:  # held too long in this process: back to Redis for anyone
                with contextlib.suppress(RedisError):
                    await self.queue.retry_at(member, self.clock() + dt.timedelta(seconds=wait))
            self._release(member)

    async def _requeue(self, member: Member, wait: float) -> None:
        await asyncio.sleep(wait)
        self._work.put_nowait(member)

    def _release(self, member: Member) -> None:
        self._held.pop(member, None)
        self._channel_of.pop(member, None)
        if not self._held:
            self._idle.set()

    async def reconcile(self) -> int:
        """Put back into Redis every pending reminder PostgreSQL knows and Redis lost."""
        return await self.queue.rebuild(
            self.database, lambda session, org_id: service.pending(session, org_id=org_id, now=self.clock())
        )

    async def digests(self) -> int:
        """Send the morning digests that are due; returns how many were sent."""
        sent = 0
        for org_id in await self.database.organization_ids():
            async with self.database.uow(org_id) as session:
                due = await claim_digests(session, org_id=org_id, now=self.clock())
            if not due:
                continue
            client = await self.client_for(org_id)
            if client is None:
                continue
            for digest in due:
                items = [(i.lead_id, i.lead_name, i.message, i.due_at) for i in digest.items]
                try:
                    await client.chat_postMessage(
                        channel=digest.slack_user_id,
                        text=f"{digest.total} follow-ups are still open",
                        blocks=digest_blocks(items, digest.total),
                    )
                    sent += 1
                except SlackApiError as exc:
                    log.warning("digest.failed user=%s error=%s", digest.user_id, exc.response.get("error"))
        return sent

    # -- one reminder ---------------------------------------------------------------------------------

    async def _handle(self, member: Member) -> float:
        """Handle one claimed member; returns seconds to wait before trying it again in memory (its DM
        channel's pacing slot is taken), or 0 when it is settled."""
        channel = self._channel_of.get(member)
        if channel is not None:  # paced before: no transaction until the channel is free
            busy = await self._slot_busy(channel)
            if busy > 0:
                return busy
        org_id, rid = member.organization_id, member.reminder_id
        try:
            async with self.database.uow(org_id) as session:
                step = await service.begin_send(session, org_id=org_id, reminder_id=rid, now=self.clock())
                delivery = None
                if isinstance(step, service.Send):
                    delivery = await self._prepare(session, member, step)
                    if delivery is not None:
                        wait = await self._take_slot(delivery.recipient_slack_id)
                        if wait > 0:
                            self._channel_of[member] = delivery.recipient_slack_id
                            raise _NotYourTurn(wait, paced=True)  # rolls the intent back
        except _NotYourTurn as turn:
            if turn.paced:
                return turn.wait
            await self.queue.retry_at(member, self.clock() + dt.timedelta(seconds=turn.wait))
            return 0.0
        if isinstance(step, Later):
            await self.queue.retry_at(member, step.at)
        elif isinstance(step, Nothing) or delivery is None:
            await self.queue.done(member)
        else:
            failpoint("reminder.after_intent")
            await self._deliver(delivery)
        return 0.0

    async def _prepare(self, session: Any, member: Member, send: service.Send) -> _Delivery | None:
        """Who and what to send; a reminder nobody can receive fails here, in the intent's transaction."""
        org_id = member.organization_id
        reminder = await session.get(Reminder, (org_id, send.reminder_id))  # loaded by begin_send
        if reminder is None:
            raise NotFound(f"reminder {send.reminder_id} not found")
        lead = await session.get(Lead, (org_id, reminder.lead_id))
        recipient = await session.get(User, (org_id, reminder.user_id)) if reminder.user_id else None
        creator = await session.get(User, (org_id, reminder.created_by)) if reminder.created_by else None
        problem = None
        if recipient is None:
            problem = "the person to remind no longer exists"
        elif not recipient.is_active:
            problem = "the person to remind is deactivated"
        elif not recipient.slack_user_id:
            problem = "the person to remind has no Slack account"
        if problem is not None or recipient is None or recipient.slack_user_id is None:
            await service.finish_failed(
                session,
                org_id=org_id,
                reminder_id=send.reminder_id,
                send_key=send.send_key,
                reason=problem or "",
            )
            return None
        if not reminder.explicit_time:
            allowed = next_allowed(self.clock(), recipient.timezone, recipient.preferences)
            if allowed > self.clock():
                raise _NotYourTurn((allowed - self.clock()).total_seconds())  # wait out quiet hours
        name = lead.display_name if lead is not None else f"lead {reminder.lead_id}"
        creator_slack = creator.slack_user_id if creator is not None and creator.is_active else None
        return _Delivery(
            member=member,
            send=send,
            recipient_slack_id=recipient.slack_user_id,
            text=reminder_text(reminder.lead_id, name, reminder.message),
            blocks=reminder_dm(
                reminder_id=reminder.id,
                lead_id=reminder.lead_id,
                lead_name=name,
                message=reminder.message,
                due_at=reminder.due_at,
                set_by_slack_id=creator.slack_user_id if creator else None,
                set_by_name=creator.name if creator else None,
                for_self=creator is not None and creator.id == recipient.id,
            ),
            creator_slack_id=creator_slack if creator is not None and creator.id != recipient.id else None,
            lead_id=reminder.lead_id,
            lead_name=name,
            recipient_name=recipient.name or recipient.slack_user_id,
        )

    async def _slot_busy(self, channel: str) -> float:
        """Seconds until ``channel``'s pacing slot frees (0: free now), without taking it."""
        if self.pace_seconds <= 0:
            return 0.0
        ttl_ms = await self.redis.pttl(self.keys.slack_pace(channel))
        return ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else 0.0

    async def _take_slot(self, channel: str) -> float:
        """0 when this process may post to ``channel`` now (the slot is then taken), else seconds to wait."""
        if self.pace_seconds <= 0:
            return 0.0
        key = self.keys.slack_pace(channel)
        if await self.redis.set(key, "1", nx=True, px=int(self.pace_seconds * 1000)):
            return 0.0
        ttl_ms = await self.redis.pttl(key)
        return max(0.05, ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else self.pace_seconds)

    async def _deliver(self, d: _Delivery) -> None:
        org_id = d.member.organization_id
        client = await self.client_for(org_id)
        if client is None:
            await self._fail(d, "lma-bot is not installed in this workspace")
            return
        if d.send.recovering:
            found = await self._find_sent(client, d)
            if found is not None:
                log.info("reminder.recovered member=%s already_sent=true", d.member)
                await self._sent(d, *found)
                return
        for _ in range(3):
            try:
                response = await client.chat_postMessage(
                    channel=d.recipient_slack_id,
                    text=d.text,
                    blocks=d.blocks,
                    metadata={
                        "event_type": METADATA_EVENT,
                        "event_payload": {
                            "reminder_id": d.send.reminder_id,
                            "send_key": str(d.send.send_key),
                        },
                    },
                    unfurl_links=False,
                )
            except SlackApiError as exc:
                status = exc.response.status_code
                error = str(exc.response.get("error") or f"http_{status}")
                if status == 429:
                    retry_after = _retry_after(exc.response.headers)
                    if retry_after <= MAX_INLINE_RETRY_AFTER:
                        log.info("reminder.rate_limited member=%s retry_after=%.0f", d.member, retry_after)
                        await self.sleep(retry_after)
                        continue
                    await self._back_off(d, "ratelimited", dt.timedelta(seconds=retry_after))
                    return
                if error in PERMANENT_ERRORS:
                    await self._fail(d, error)
                    return
                await self._back_off(d, error, service.backoff_delay(d.send.attempt))
                return
            except (aiohttp.ClientError, TimeoutError) as exc:
                await self._back_off(d, type(exc).__name__, service.backoff_delay(d.send.attempt))
                return
            failpoint("reminder.after_post")
            await self._sent(d, str(response["channel"]), str(response["ts"]))
            return
        await self._back_off(d, "ratelimited", service.backoff_delay(d.send.attempt))

    async def _find_sent(self, client: AsyncWebClient, d: _Delivery) -> tuple[str, str] | None:
        """The (channel, ts) of a message an earlier attempt posted with this send key, if any."""
        try:
            opened = await client.conversations_open(users=d.recipient_slack_id)
            channel = str(opened["channel"]["id"])
            # the newest messages of the DM: a recovery runs minutes after the intent, so its message, if
            # posted, is among them
            history = await client.conversations_history(
                channel=channel, limit=200, include_all_metadata=True
            )
        except SlackApiError as exc:
            log.warning(
                "reminder.recover.lookup_failed member=%s error=%s", d.member, exc.response.get("error")
            )
            return None
        for message in history.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and payload.get("send_key") == str(d.send.send_key):
                return channel, str(message["ts"])
        return None

    async def _sent(self, d: _Delivery, channel: str, ts: str) -> None:
        async with self.database.uow(d.member.organization_id) as session:
            ours = await service.finish_sent(
                session,
                org_id=d.member.organization_id,
                reminder_id=d.send.reminder_id,
                send_key=d.send.send_key,
                channel=channel,
                ts=ts,
                now=self.clock(),
            )
        if not ours:
            log.warning("reminder.sent.superseded member=%s", d.member)
        await self.queue.done(d.member)
        try:  # the lead card shows the next pending reminder
            await self.redis.delete(self.keys.lead(d.lead_id))
        except RedisError:
            log.warning("reminder.card_cache.invalidate_failed lead_id=%s", d.lead_id)

    async def _fail(self, d: _Delivery, reason: str) -> None:
        async with self.database.uow(d.member.organization_id) as session:
            failed = await service.finish_failed(
                session,
                org_id=d.member.organization_id,
                reminder_id=d.send.reminder_id,
                send_key=d.send.send_key,
                reason=reason,
            )
        await self.queue.done(d.member)
        log.warning("reminder.failed member=%s reason=%s", d.member, reason)
        if failed is not None and d.creator_slack_id:
            await self._tell_creator(d, reason)

    async def _back_off(self, d: _Delivery, reason: str, delay: dt.timedelta) -> None:
        retry_at = self.clock() + delay
        async with self.database.uow(d.member.organization_id) as session:
            row = await service.back_off(
                session,
                org_id=d.member.organization_id,
                reminder_id=d.send.reminder_id,
                send_key=d.send.send_key,
                reason=reason,
                retry_at=retry_at,
            )
        if row is not None and row.status == "scheduled":
            log.info("reminder.retry member=%s reason=%s in=%.0fs", d.member, reason, delay.total_seconds())
            await self.queue.retry_at(d.member, retry_at)
            return
        await self.queue.done(d.member)
        if row is not None and row.status == "failed" and d.creator_slack_id:
            await self._tell_creator(d, row.failure_reason or reason)

    async def _tell_creator(self, d: _Delivery, reason: str) -> None:
        client = await self.client_for(d.member.organization_id)
        if client is None or d.creator_slack_id is None:
            return
        try:
            await client.chat_postMessage(
                channel=d.creator_slack_id,
                text=f"Your reminder about #{d.lead_id} could not be delivered: {reason}",
                blocks=reminder_failed_dm(
                    lead_id=d.lead_id, lead_name=d.lead_name, recipient=d.recipient_name, reason=reason
                ),
            )
        except SlackApiError as exc:
            log.warning(
                "reminder.failed.notify_failed member=%s error=%s", d.member, exc.response.get("error")
            )

    # -- Slack clients ---------------------------------------------------------------------------------

    async def client_for(self, org_id: int) -> AsyncWebClient | None:
        assert self.clients is not None  # set in __post_init__
        return await self.clients.client_for(org_id)


def _retry_after(headers: Any) -> float:
    raw = None
    if headers:
        raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(1.0, float(raw)) if raw is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def reminders_for(ctx: JobContext) -> ReminderDispatcher:
    """The job context's dispatcher (one per scheduler process: its Slack clients and token cache)."""
    found = ctx.state.get("reminders")
    if not isinstance(found, ReminderDispatcher):
        found = ReminderDispatcher(
            settings=ctx.settings, database=ctx.database, redis=ctx.redis, keys=ctx.keys
        )
        ctx.state["reminders"] = found
    return found
