"""Scheduler jobs that deliver reminders: claim due ids from Redis, record the send intent in PostgreSQL,
DM the person reminded, mark it sent. See :mod:`lma_bot.reminders.service` for why this is exactly-once.

Reminders due together for one person are coalesced: one DM lists them (up to ``per_message``, each with
its own Done / Snooze 1 h / Tomorrow 9:00 row), instead of one DM each paced a second apart. A claim is
handled in one transaction per organization: lock the due rows, group them per person, record every
intent in one UPDATE (each reminder stores its message's send key); after the post, one UPDATE marks a
whole flush of messages sent. The message's metadata carries the send key and the reminder ids, so a
recovery marks exactly the reminders a message carried.

Slack etiquette: about one message per second per DM channel across every scheduler process (a Redis
``SET NX PX`` slot per channel; a person's second message waits in memory for the slot), ``Retry-After``
honoured on 429, permanent errors fail the message's reminders with the reason (their creators are told),
transient ones retry with backoff up to a cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.jobs import JobContext
from handlers.slack.blocks.reminders import (
    MAX_PER_MESSAGE,
    METADATA_EVENT,
    DueItem,
    digest_blocks,
    reminder_failed_dm,
    reminders_dm,
    reminders_text,
)
from handlers.slack.clients import BotClients
from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.failpoints import failpoint
from lma_bot.models import Lead, User
from lma_bot.queues import Later
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
#: How long a message may wait in memory for its DM channel's pacing slot (holding its intent) before it
#: goes back to the queue; well inside service.SEND_TIMEOUT.
MAX_SLOT_WAIT = 30.0
#: How long a posted message may wait to be marked sent while other DMs are being prepared and posted.
MAX_MARK_DELAY = 3.0
#: A message not posted this long after its intent was recorded is not posted by this process (a recovery
#: may take its intent over after service.SEND_TIMEOUT): it goes back to the queue.
MAX_POST_DELAY = service.SEND_TIMEOUT.total_seconds() / 2
#: Slices of a claim are not prepared while this many messages wait to be posted (backpressure).
MAX_BACKLOG = 400


@dataclass
class _Message:
    """One DM in the making: reminders due together for one person, under one send key."""

    org_id: int
    send_key: uuid.UUID
    recovering: bool  # an earlier intent under this key: look for its message before posting
    recipient_slack_id: str
    recipient_name: str
    items: list[DueItem]
    members: list[Member]
    attempt: int
    creators: dict[
        int, str
    ]  # reminder id -> the Slack id of its creator to tell on failure (not the recipient)
    part: int = 1
    parts: int = 1
    begun: float = field(default_factory=time.monotonic)  # when its intent was recorded

    @property
    def reminder_ids(self) -> tuple[int, ...]:
        return tuple(i.reminder_id for i in self.items)

    def only(self, ids: set[int]) -> _Message:
        keep = [k for k, i in enumerate(self.items) if i.reminder_id in ids]
        return replace(self, items=[self.items[k] for k in keep], members=[self.members[k] for k in keep])


@dataclass
class ReminderDispatcher:
    settings: Settings
    database: Database
    redis: AnyRedis
    keys: RedisKeys
    concurrency: int = 16  # Slack posts in flight
    claim_limit: int = 10000
    per_message: int = MAX_PER_MESSAGE
    #: Reminders per transaction of a claim (whole people): the first DMs go out while the rest is prepared.
    slice_size: int = 500
    #: seconds after its intent a message may still be posted by this process (MAX_POST_DELAY)
    post_deadline: float = MAX_POST_DELAY
    pace_seconds: float = 1.0
    #: Claim again the moment the next queued reminder falls due (between the scheduler's 1 s runs).
    wake_on_due: bool = False
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clients: BotClients | None = None

    def __post_init__(self) -> None:
        self.queue = DueQueue(self.redis, self.keys)
        self._own_clients = self.clients is None
        if self.clients is None:
            self.clients = BotClients(self.settings, self.database)
        # Continuous dispatch: each claim is handled by its own task, so a slow channel (pacing, a slow
        # Slack) never holds back the next claim; claimed members are held here until settled.
        self._held: set[Member] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(self.concurrency)
        self._to_mark: dict[int, list[tuple[service.Posted, _Message]]] = {}
        self._marking: dict[int, asyncio.Task[None]] = {}
        self._wake: asyncio.TimerHandle | None = None
        # Marking sent waits while claims are being prepared and posted (it is not on the DMs' path and
        # would only take CPU and PostgreSQL from them), up to MAX_MARK_DELAY.
        self._active = 0
        self._backlog = 0  # messages whose intent is recorded, not yet posted or settled
        self._room = asyncio.Event()  # set while the backlog is under MAX_BACKLOG
        self._room.set()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- the jobs --------------------------------------------------------------------------------------

    async def pump(self) -> int:
        """Claim what is due, up to what this process may hold, and start handling it; returns at once.

        The scheduler runs this every second. Everything due is claimed together so that the reminders of
        one person land in one hand and go out as one DM."""
        room = self.claim_limit - len(self._held)
        members = []
        if room > 0:
            claimed = await self.queue.claim(now=self.clock(), lease=CLAIM_LEASE_SECONDS, limit=room)
            members = [m for m in claimed if m not in self._held]  # ours came back (lease expired): in hand
            if members:
                self._held.update(members)
                self._idle.clear()
                self._spawn(self._handle(members))
        if self.wake_on_due:
            await self._wake_for_next()
        return len(members)

    async def tick(self) -> int:
        """Claim what is due and wait until every claimed member is handled (tests, `--once` runs)."""
        claimed = await self.pump()
        await self._idle.wait()
        return claimed

    async def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        tasks = [*self._tasks, *self._marking.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_clients and self.clients is not None:
            await self.clients.close()  # its Slack connection pool

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake_for_next(self) -> None:
        """Pump again when the next queued member falls due, if that is before the next scheduled run."""
        if self._wake is not None:
            return
        try:
            head = await self.redis.zrange(self.queue.queue_key, 0, 0, withscores=True)
        except RedisError:
            return
        if not head:
            return
        delay = float(head[0][1]) - self.clock().timestamp()
        if 0 < delay < 1.0:
            self._wake = asyncio.get_running_loop().call_later(delay, self._woken)

    def _woken(self) -> None:
        self._wake = None
        self._spawn(self._pump_quietly())

    async def _pump_quietly(self) -> None:
        try:
            await self.pump()
        except Exception:  # the scheduler's next run tries again
            log.exception("reminder.pump.error")

    def _enter(self) -> None:
        self._active += 1
        self._quiet.clear()

    def _leave(self) -> None:
        self._active -= 1
        if self._active <= 0:
            self._active = 0
            self._quiet.set()

    def _release(self, members: Iterable[Member]) -> None:
        self._held.difference_update(members)
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

    # -- a claim ---------------------------------------------------------------------------------------

    async def _handle(self, members: list[Member]) -> None:
        by_org: dict[int, list[Member]] = defaultdict(list)
        for member in members:
            by_org[member.organization_id].append(member)
        await asyncio.gather(*(self._handle_org(org_id, ms) for org_id, ms in by_org.items()))

    async def _handle_org(self, org_id: int, members: list[Member]) -> None:
        """Coalesce per person, in slices of whole people (``slice_size`` reminders or so): each slice's
        intents are committed and its messages posted while the next slice is prepared."""
        self._enter()
        try:
            await self._prepare_and_post(org_id, members)
        finally:
            self._leave()

    async def _prepare_and_post(self, org_id: int, members: list[Member]) -> None:
        try:
            async with self.database.uow(org_id) as session:
                named = await service.named_in(
                    session, org_id=org_id, reminder_ids=[m.reminder_id for m in members]
                )
                people = await service.people_and_leads(
                    session,
                    org_id=org_id,
                    user_ids={u for n in named.values() for u in (n.user_id, n.created_by) if u is not None},
                    lead_ids={n.lead_id for n in named.values()},
                )
        except Exception:  # stays claimed in Redis: its lease brings it back
            log.exception("reminder.dispatch.error org_id=%s members=%d", org_id, len(members))
            self._release(members)
            return
        per_person: dict[int | None, list[Member]] = defaultdict(list)
        for member in members:
            found = named.get(member.reminder_id)
            per_person[found.user_id if found is not None else None].append(member)
        slices: list[list[Member]] = [[]]
        for group in per_person.values():
            if slices[-1] and len(slices[-1]) + len(group) > self.slice_size:
                slices.append([])
            slices[-1].extend(group)
        for part in slices:
            await self._room.wait()
            try:
                messages = await self._begin(org_id, part, people)
            except Exception:  # stays claimed in Redis: its lease brings it back
                log.exception("reminder.dispatch.error org_id=%s members=%d", org_id, len(part))
                self._release(part)
                continue
            failpoint("reminder.after_intent")
            by_channel: dict[str, list[_Message]] = defaultdict(list)
            for message in messages:
                by_channel[message.recipient_slack_id].append(message)
            taken = await self._take_slots(list(by_channel))
            self._backlog += len(messages)
            if self._backlog >= MAX_BACKLOG:
                self._room.clear()
            for channel, channel_messages in by_channel.items():
                self._enter()
                self._spawn(self._deliver_channel(channel_messages, slot_taken=channel in taken))
            await asyncio.sleep(0)  # let the first posts of this slice start

    async def _begin(
        self, org_id: int, members: list[Member], people: tuple[dict[int, User], dict[int, Lead]]
    ) -> list[_Message]:
        """One transaction for a slice of a claim: lock what is due, coalesce it into messages (per person,
        at most ``per_message`` each), record every intent in one UPDATE. Returns the messages to post;
        everything else is settled in Redis here. ``people``: the users and leads the claim names, loaded
        once for the claim (anything missing is loaded here)."""
        now = self.clock()
        member_of = {m.reminder_id: m for m in members}
        settle: list[tuple[Member, dt.datetime | None]] = []
        failed: list[tuple[service.Due, str, str | None]] = []  # reminder, reason, creator to tell
        names: dict[int, tuple[str, str]] = {}  # failed reminder id -> (lead name, recipient name)
        messages: list[_Message] = []
        async with self.database.uow(org_id) as session:
            due, other = await service.lock_due(session, org_id=org_id, reminder_ids=list(member_of), now=now)
            for rid, step in other.items():
                settle.append((member_of[rid], step.at if isinstance(step, Later) else None))
            users, leads = people
            more = await service.people_and_leads(
                session,
                org_id=org_id,
                user_ids={u for d in due for u in (d.user_id, d.created_by) if u is not None} - users.keys(),
                lead_ids={d.lead_id for d in due} - leads.keys(),
            )
            users, leads = users | more[0], leads | more[1]
            groups: dict[tuple[int, uuid.UUID | None], list[service.Due]] = defaultdict(list)

            lead_names = {lead_id: lead.display_name for lead_id, lead in leads.items()}

            def lead_name(lead_id: int) -> str:
                return lead_names.get(lead_id) or f"lead {lead_id}"

            for d in due:
                recipient = users.get(d.user_id) if d.user_id is not None else None
                creator = users.get(d.created_by) if d.created_by is not None else None
                tell = (
                    creator.slack_user_id
                    if creator is not None and creator.is_active and creator.id != d.user_id
                    else None
                )
                names[d.reminder_id] = (
                    lead_name(d.lead_id),
                    (recipient.name or recipient.email) if recipient is not None else "someone removed",
                )
                if recipient is None:
                    failed.append((d, "the person to remind no longer exists", tell))
                elif not recipient.is_active:
                    failed.append((d, "the person to remind is deactivated", tell))
                elif not recipient.slack_user_id:
                    failed.append((d, "the person to remind has no Slack account", tell))
                elif (
                    not d.explicit_time
                    and d.send_key is None
                    and ((allowed := next_allowed(now, recipient.timezone, recipient.preferences)) > now)
                ):
                    settle.append((member_of[d.reminder_id], allowed))  # waits out quiet hours
                else:
                    groups[(recipient.id, d.send_key)].append(d)
            for (uid, old_key), ds in groups.items():
                recipient = users[uid]
                ds.sort(key=lambda d: (d.due_at, d.reminder_id))
                chunks = [ds[i : i + self.per_message] for i in range(0, len(ds), self.per_message)]
                for part, chunk in enumerate(chunks, start=1):
                    items, creators = [], {}
                    for d in chunk:
                        creator = users.get(d.created_by) if d.created_by is not None else None
                        items.append(
                            DueItem(
                                reminder_id=d.reminder_id,
                                lead_id=d.lead_id,
                                lead_name=lead_name(d.lead_id),
                                message=d.message,
                                due_at=d.due_at,
                                set_by_slack_id=creator.slack_user_id if creator else None,
                                set_by_name=creator.name if creator else None,
                                for_self=creator is not None and creator.id == uid,
                            )
                        )
                        if (
                            creator is not None
                            and creator.is_active
                            and creator.id != uid
                            and creator.slack_user_id
                        ):
                            creators[d.reminder_id] = creator.slack_user_id
                    messages.append(
                        _Message(
                            org_id=org_id,
                            send_key=old_key or uuid.uuid4(),
                            recovering=old_key is not None,
                            recipient_slack_id=str(recipient.slack_user_id),
                            recipient_name=recipient.name or str(recipient.slack_user_id),
                            items=items,
                            members=[member_of[d.reminder_id] for d in chunk],
                            attempt=max(d.attempts for d in chunk) + 1,
                            creators=creators,
                            part=part,
                            parts=len(chunks),
                        )
                    )
            intents = {i.reminder_id: m.send_key for m in messages for i in m.items}
            fail_keys = {d.reminder_id: d.send_key or uuid.uuid4() for d, _, _ in failed}
            await service.record_intents(session, org_id=org_id, keys=intents | fail_keys, now=now)
            for d, reason, _ in failed:
                await service.finish_failed(
                    session,
                    org_id=org_id,
                    reminder_id=d.reminder_id,
                    send_key=fail_keys[d.reminder_id],
                    reason=reason,
                )
        settle += [(member_of[d.reminder_id], None) for d, _, _ in failed]
        if settle:
            await self.queue.settle(settle)
            self._release(m for m, _ in settle)
        for d, reason, tell in failed:
            log.warning("reminder.failed member=%s reason=%s", member_of[d.reminder_id], reason)
            if tell:
                lead, recipient_name = names[d.reminder_id]
                await self._tell_creator(org_id, tell, d.lead_id, lead, reason, recipient_name)
        return messages

    # -- one DM channel -------------------------------------------------------------------------------

    async def _deliver_channel(self, messages: list[_Message], *, slot_taken: bool) -> None:
        """The messages of one DM channel, in order, a pacing slot each (the first one's maybe taken)."""
        try:
            for i, message in enumerate(messages):
                try:
                    await self._deliver(message, slot_taken=slot_taken and i == 0)
                except Exception:  # stays claimed in Redis: its lease brings it back (a recovery, by its key)
                    log.exception("reminder.dispatch.error send_key=%s", message.send_key)
                    self._release(message.members)
                finally:
                    self._backlog -= 1
                    if self._backlog < MAX_BACKLOG:
                        self._room.set()
        finally:
            self._leave()

    async def _deliver(self, m: _Message, *, slot_taken: bool = False) -> None:
        client = await self.client_for(m.org_id)
        if client is None:
            await self._fail(m, "lma-bot is not installed in this workspace")
            return
        if m.recovering:
            async with self._gate:
                found = await self._find_sent(client, m)
            for (channel, ts), ids in found.items():
                log.info("reminder.recovered send_key=%s already_sent=%d", m.send_key, len(ids))
                self._mark_sent(service.Posted(m.send_key, tuple(sorted(ids)), channel, ts), m.only(ids))
            left = set(m.reminder_ids) - {rid for ids in found.values() for rid in ids}
            if not left:
                return
            m = m.only(left)
        blocks = reminders_dm(m.items, part=m.part, parts=m.parts)
        text = reminders_text(m.items)
        metadata = {
            "event_type": METADATA_EVENT,
            "event_payload": {"send_key": str(m.send_key), "reminder_ids": list(m.reminder_ids)},
        }
        waited, rate_limited = 0.0, 0
        while True:
            response: Any = None
            problem: Exception | None = None
            async with self._gate:  # bounds the Slack calls and Redis connections in flight
                if time.monotonic() - m.begun > self.post_deadline:
                    late = True
                    wait = 0.0
                else:
                    late = False
                    wait = 0.0 if slot_taken else await self._take_slot(m.recipient_slack_id)
                slot_taken = False
                if wait <= 0 and not late:
                    try:
                        response = await client.chat_postMessage(
                            channel=m.recipient_slack_id,
                            text=text,
                            blocks=blocks,
                            metadata=metadata,
                            unfurl_links=False,
                        )
                    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                        problem = exc
            if late:  # its intent may be taken over soon: give it back rather than risk a second post
                await self._back_off(m, "not posted in time", dt.timedelta(0))
                return
            if wait > 0:  # the channel's slot is taken: wait in memory, holding the intent
                if waited + wait > MAX_SLOT_WAIT:  # busy elsewhere for long: later, from Redis
                    await self._back_off(m, "paced", dt.timedelta(seconds=wait))
                    return
                waited += wait
                await self.sleep(wait)
                continue
            if isinstance(problem, SlackApiError):
                status = problem.response.status_code
                error = str(problem.response.get("error") or f"http_{status}")
                if status == 429:
                    retry_after = _retry_after(problem.response.headers)
                    rate_limited += 1
                    if retry_after <= MAX_INLINE_RETRY_AFTER and rate_limited < 3:
                        log.info(
                            "reminder.rate_limited send_key=%s retry_after=%.0f", m.send_key, retry_after
                        )
                        await self.sleep(retry_after)
                        continue
                    await self._back_off(m, "ratelimited", dt.timedelta(seconds=retry_after))
                    return
                if error in PERMANENT_ERRORS:
                    await self._fail(m, error)
                    return
                await self._back_off(m, error, service.backoff_delay(m.attempt))
                return
            if problem is not None:
                await self._back_off(m, type(problem).__name__, service.backoff_delay(m.attempt))
                return
            failpoint("reminder.after_post")
            self._mark_sent(
                service.Posted(m.send_key, m.reminder_ids, str(response["channel"]), str(response["ts"])), m
            )
            return

    async def _find_sent(self, client: AsyncWebClient, m: _Message) -> dict[tuple[str, str], set[int]]:
        """Which reminders of ``m`` an earlier attempt already posted: (channel, ts) -> reminder ids, from
        the messages of the DM carrying ``m``'s send key (a message lists the reminders it carried)."""
        try:
            opened = await client.conversations_open(users=m.recipient_slack_id)
            channel = str(opened["channel"]["id"])
            # the newest messages of the DM: a recovery runs minutes after the intent, so its message, if
            # posted, is among them
            history = await client.conversations_history(
                channel=channel, limit=200, include_all_metadata=True
            )
        except SlackApiError as exc:
            log.warning(
                "reminder.recover.lookup_failed send_key=%s error=%s", m.send_key, exc.response.get("error")
            )
            return {}
        wanted = set(m.reminder_ids)
        found: dict[tuple[str, str], set[int]] = {}
        for message in history.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") != METADATA_EVENT or payload.get("send_key") != str(m.send_key):
                continue
            carried = payload.get("reminder_ids")
            if carried is None and payload.get("reminder_id") is not None:
                carried = [payload["reminder_id"]]
            ids = wanted if carried is None else wanted & {int(i) for i in carried}  # None: a one-reminder DM
            ids -= {rid for seen in found.values() for rid in seen}
            if ids:
                found.setdefault((channel, str(message["ts"])), set()).update(ids)
        return found

    # -- settling -------------------------------------------------------------------------------------

    def _mark_sent(self, posted: service.Posted, m: _Message) -> None:
        """Queue ``posted`` to be marked sent; one flush per organization at a time marks everything queued
        by then in one statement (group commit)."""
        self._to_mark.setdefault(m.org_id, []).append((posted, m))
        if m.org_id not in self._marking:
            task = asyncio.create_task(self._mark_loop(m.org_id))
            self._marking[m.org_id] = task

    async def _mark_loop(self, org_id: int) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), MAX_MARK_DELAY)
                batch = self._to_mark.pop(org_id, [])
                if not batch:
                    break
                members = [member for _, m in batch for member in m.members]
                try:
                    async with self.database.uow(org_id) as session:
                        marked = await service.finish_sent_many(
                            session, org_id=org_id, posted=[p for p, _ in batch], now=self.clock()
                        )
                    if len(marked) < len(members):
                        log.warning("reminder.sent.superseded count=%d", len(members) - len(marked))
                    await self.queue.settle((member, None) for member in members)
                    cards = {self.keys.lead(lead_id) for _, lead_id in marked}
                    try:  # the lead card shows the next pending reminder
                        if cards:
                            await self.redis.delete(*cards)
                    except RedisError:
                        log.warning("reminder.card_cache.invalidate_failed org_id=%s", org_id)
                except Exception:  # still `sending` with the key: a recovery finds the messages
                    log.exception("reminder.mark_sent.error org_id=%s messages=%d", org_id, len(batch))
                finally:
                    self._release(members)
        finally:
            self._marking.pop(org_id, None)

    async def _fail(self, m: _Message, reason: str) -> None:
        try:
            async with self.database.uow(m.org_id) as session:
                failed = await service.finish_failed_many(
                    session,
                    org_id=m.org_id,
                    reminder_ids=list(m.reminder_ids),
                    send_key=m.send_key,
                    reason=reason,
                )
            await self.queue.settle((member, None) for member in m.members)
        finally:
            self._release(m.members)
        log.warning("reminder.failed send_key=%s reminders=%d reason=%s", m.send_key, len(failed), reason)
        await self._tell_creators(m, {r.id for r in failed}, reason)

    async def _back_off(self, m: _Message, reason: str, delay: dt.timedelta) -> None:
        retry_at = self.clock() + delay
        try:
            async with self.database.uow(m.org_id) as session:
                rows = await service.back_off_many(
                    session,
                    org_id=m.org_id,
                    reminder_ids=list(m.reminder_ids),
                    send_key=m.send_key,
                    reason=reason,
                    retry_at=retry_at,
                )
            state = {r.id: (r.status, r.failure_reason) for r in rows}
            await self.queue.settle(
                (member, retry_at if state.get(member.reminder_id, ("",))[0] == "scheduled" else None)
                for member in m.members
            )
        finally:
            self._release(m.members)
        log.info("reminder.retry send_key=%s reason=%s in=%.0fs", m.send_key, reason, delay.total_seconds())
        gave_up = {rid for rid, (status, _) in state.items() if status == "failed"}
        if gave_up:
            why = next(r for rid, (s, r) in state.items() if rid in gave_up) or reason
            await self._tell_creators(m, gave_up, why)

    async def _tell_creators(self, m: _Message, failed: set[int], reason: str) -> None:
        for item in m.items:
            tell = m.creators.get(item.reminder_id)
            if item.reminder_id in failed and tell:
                await self._tell_creator(
                    m.org_id, tell, item.lead_id, item.lead_name, reason, m.recipient_name
                )

    async def _tell_creator(
        self, org_id: int, creator: str, lead_id: int, lead: Any, reason: str, recipient: str
    ) -> None:
        client = await self.client_for(org_id)
        if client is None:
            return
        name = (
            lead if isinstance(lead, str) else (lead.display_name if lead is not None else f"lead {lead_id}")
        )
        try:
            await client.chat_postMessage(
                channel=creator,
                text=f"Your reminder about #{lead_id} could not be delivered: {reason}",
                blocks=reminder_failed_dm(
                    lead_id=lead_id, lead_name=name, recipient=recipient, reason=reason
                ),
            )
        except SlackApiError as exc:
            log.warning(
                "reminder.failed.notify_failed lead_id=%s error=%s", lead_id, exc.response.get("error")
            )

    async def _take_slots(self, channels: list[str]) -> set[str]:
        """Take the pacing slots of ``channels`` in one round trip; returns those taken (the others are
        tried one by one when their message is posted)."""
        if self.pace_seconds <= 0:
            return set(channels)
        if not channels:
            return set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.set(self.keys.slack_pace(channel), "1", nx=True, px=int(self.pace_seconds * 1000))
                answers = await pipe.execute()
        except RedisError:
            log.warning("reminder.pace.unavailable channels=%d", len(channels))
            return set()
        return {channel for channel, ok in zip(channels, answers, strict=True) if ok}

    async def _take_slot(self, channel: str) -> float:
        """0 when this process may post to ``channel`` now (the slot is then taken), else seconds to wait."""
        if self.pace_seconds <= 0:
            return 0.0
        key = self.keys.slack_pace(channel)
        if await self.redis.set(key, "1", nx=True, px=int(self.pace_seconds * 1000)):
            return 0.0
        ttl_ms = await self.redis.pttl(key)
        return max(0.05, ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else self.pace_seconds)

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
            settings=ctx.settings, database=ctx.database, redis=ctx.redis, keys=ctx.keys, wake_on_due=True
        )
        ctx.state["reminders"] = found
    return found
