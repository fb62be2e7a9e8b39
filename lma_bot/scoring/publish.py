"""After the commit: ``lead_score:{id}`` refreshed, the cached card ``lead:{id}`` dropped, and a hot-lead
alert raised once per crossing into hot.

:func:`attach` wires a :class:`ScorePublisher` to a :class:`~lma_bot.db.Database` the way the workflow
dispatcher is wired: an ``after_commit`` listener hands the session's noted changes
(:data:`~lma_bot.scoring.engine.SCORE_OUTBOX_KEY`) to the publisher; a rollback drops them. Callers that
own their flow (the rescore command, the decay job) call :meth:`ScorePublisher.publish` themselves.

The hot alert is a callback, ``on_hot(alert)``: the Slack layer passes one that DMs the owner (or posts to
``alert.channel``). Without one, alerts are logged. Redis being down is logged and otherwise ignored: the
database is the truth and readers fall back to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from lma_bot.db import Database
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.scoring.engine import SCORE_OUTBOX_KEY, ScoreChange

log = logging.getLogger(__name__)

PUBLISHER_KEY = "lma.score_publisher"
SCORE_TTL_SECONDS = 7 * 24 * 3600
BATCH = 1000

#: The hot-lead alert: a :class:`ScoreChange` with ``became_hot``; ``owner_id`` (users.id) or
#: ``alert_channel`` (a Slack channel id from the organization's scoring settings) says who is told.
HotAlert = ScoreChange

#: KEYS: n ``lead_score:{id}`` keys, then their n ``lead:{id}`` card keys; ARGV: the TTL, then n values.
_PUBLISH_SCRIPT = """
local n = #KEYS / 2
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
end
redis.call('DEL', unpack(KEYS, n + 1, 2 * n))
return n
"""
OnHot = Callable[[HotAlert], Awaitable[None]]


def score_value(change: ScoreChange, now: dt.datetime | None = None) -> str:
    """What ``lead_score:{id}`` holds: ``{organization_id, score, temperature, last_calculated}``."""
    return _value(change, (now or dt.datetime.now(dt.UTC)).isoformat())


#: ``json.dumps`` of the value's dict, as a format: a rescore formats 100,000 of them (ids and scores are
#: ints, the temperature one of three words, the stamp an ISO timestamp: nothing to escape)
_VALUE = '{"organization_id": %d, "score": %d, "temperature": "%s", "last_calculated": "%s"}'
_TEMPERATURES = frozenset({"cold", "warm", "hot"})


def _value(change: ScoreChange, stamp: str) -> str:
    if change.temperature not in _TEMPERATURES:  # never, but then JSON-escaped
        return json.dumps(
            {
                "organization_id": change.org_id,
                "score": change.score,
                "temperature": change.temperature,
                "last_calculated": stamp,
            }
        )
    return _VALUE % (change.org_id, change.score, change.temperature, stamp)


class ScorePublisher:
    def __init__(self, redis: AnyRedis, keys: RedisKeys, *, on_hot: OnHot | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.on_hot = on_hot
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, changes: Sequence[ScoreChange]) -> None:
        if not changes:
            return
        changes = coalesce(changes)
        stamp = dt.datetime.now(dt.UTC).isoformat()
        single = isinstance(self.redis, aioredis.Redis)
        for start in range(0, len(changes), BATCH):
            chunk = changes[start : start + BATCH]
            try:
                if single:
                    # one script call per chunk: a command (and a reply) per key costs the client far more
                    # than the server (a rescore publishes 100,000 scores)
                    await self.redis.eval(
                        _PUBLISH_SCRIPT,
                        2 * len(chunk),
                        *(self.keys.lead_score(c.lead_id) for c in chunk),
                        *(self.keys.lead(c.lead_id) for c in chunk),
                        SCORE_TTL_SECONDS,
                        *(_value(c, stamp) for c in chunk),
                    )
                    continue
                pipe = self.redis.pipeline(transaction=False)  # a cluster: keys live in different slots
                for change in chunk:
                    pipe.set(
                        self.keys.lead_score(change.lead_id), _value(change, stamp), ex=SCORE_TTL_SECONDS
                    )
                    pipe.delete(self.keys.lead(change.lead_id))
                await pipe.execute()
            except RedisError as exc:
                log.warning("scoring.publish_failed leads=%s error=%s", len(chunk), type(exc).__name__)
        for change in changes:
            if not change.became_hot:
                continue
            if self.on_hot is None:
                log.info(
                    "scoring.hot_lead org=%s lead_id=%s score=%s owner=%s channel=%s (no alert sender wired)",
                    change.org_id,
                    change.lead_id,
                    change.score,
                    change.owner_id,
                    change.alert_channel,
                )
                continue
            try:
                await self.on_hot(change)
            except Exception:
                log.exception("scoring.hot_alert_failed org=%s lead_id=%s", change.org_id, change.lead_id)

    def submit(self, changes: Sequence[ScoreChange]) -> None:
        """Publish in the background (from a synchronous after-commit hook)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.publish(list(changes)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background publishes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def read_score(redis: AnyRedis, keys: RedisKeys, lead_id: int) -> dict[str, Any] | None:
    raw = await redis.get(keys.lead_score(lead_id))
    return json.loads(raw) if raw else None


def coalesce(changes: Sequence[ScoreChange]) -> list[ScoreChange]:
    """One change per lead: from its first noted previous state to its last noted state."""
    first: dict[int, ScoreChange] = {}
    last: dict[int, ScoreChange] = {}
    for change in changes:
        first.setdefault(change.lead_id, change)
        last[change.lead_id] = change
    if len(last) == len(changes):  # one change per lead already (a rescore)
        return list(changes)
    return [
        dataclasses.replace(
            last[lead_id],
            previous=first[lead_id].previous,
            previous_temperature=first[lead_id].previous_temperature,
        )
        for lead_id in last
    ]


def _after_commit(session: Session) -> None:
    changes: list[ScoreChange] | None = session.info.pop(SCORE_OUTBOX_KEY, None)
    publisher = session.info.get(PUBLISHER_KEY)
    if changes and isinstance(publisher, ScorePublisher):
        publisher.submit(changes)


def attach(database: Database, publisher: ScorePublisher | None) -> None:
    """Sessions of ``database`` hand their committed score changes to ``publisher`` (None: detach)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)

    info: dict[str, Any] = dict(database.sessionmaker.kw.get("info") or {})
    if publisher is None:
        info.pop(PUBLISHER_KEY, None)
    else:
        info[PUBLISHER_KEY] = publisher
    database.sessionmaker.configure(info=info)
