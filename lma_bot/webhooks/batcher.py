"""Group commit for webhook deliveries: many concurrent requests, one transaction, one commit.

A request that has passed the size, key, authentication and payload checks hands its events to the
:class:`IngestBatcher` and waits. The batcher's flusher takes everything pending (after a short window when it
was idle, at once when pending work piled up during the previous flush), and in **one transaction**:

- for each organization of the batch: sets the tenant (``set_config('app.current_organization_id', org,
  true)``) and stores all of that organization's events with one ``INSERT ... SELECT FROM unnest(...) ON
  CONFLICT DO NOTHING`` (:func:`~lma_bot.webhooks.service.store_many`); a duplicate is a no-op;
- commits once, then resolves every waiting request. The HTTP 2xx is sent only after the commit that holds
  the request's events (CONTRACT: a 2xx only after the data is durably in PostgreSQL). If the transaction
  fails (PostgreSQL unreachable), every waiter gets the error (503, ``Retry-After``) and nothing is stored.

One transaction switching tenants rather than one per organization: the commit (a WAL flush) is the cost
being shared, so one commit per flush however many organizations it holds; the tenant is transaction-local and
set before each organization's statements, and every statement also names its organization (RLS is the
second wall). Parallel per-organization transactions would cost one commit and one connection each.

Processing (applying an event to leads, executions, communications):

- **inline**, in the same transaction, each event in its own savepoint (a failure is recorded on its row and
  fails no other event), when the flush is small (at most ``inline_limit`` deliveries): a quiet gateway
  answers with the outcome (``processed``/``ignored``/``failed``);
- **deferred**, when the flush is bigger (the gateway is busy): the rows are committed with status
  ``received``, the requests answered (``"received": n``), and the :class:`EventProcessor` processes them right
  after, in batches per organization, claiming rows with ``FOR UPDATE SKIP LOCKED``. A row left ``received``
  (the process died between the commit and the processing) is found by the sweeper and processed then.

A delivery with more than ``direct_limit`` events (a provider's batch) is its own transaction, processed
inline, as a batch already: group commit would only make the others wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import TENANT_SETTING, Database
from lma_bot.webhooks.replay import processor_for
from lma_bot.webhooks.service import (
    TRANSIENT_SQLSTATES,
    Delivery,
    Incoming,
    IngestResult,
    Processor,
    claim_received,
    ingest,
    load_events,
    process_many,
    store_many,
    store_many_driver,
    transient,
)

log = logging.getLogger(__name__)

#: A batcher whose last flush ended longer ago than this (seconds) is idle: its next flush waits ``max_wait`` for
#: more deliveries to join. A busy one flushes at once (what arrived during the previous flush).
IDLE_AFTER = 0.05

#: Attempts of a flush's transaction that fails with a deadlock or serialization failure (:func:`transient`).
TRANSIENT_ATTEMPTS = 3

_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :org, true)")

#: Called with the lead ids an event changed once its processing is committed (card cache invalidation).
OnProcessed = Callable[[set[int]], Awaitable[None]]


@dataclass
class _Waiter:
    org_id: int
    delivery: Delivery
    processor: Processor
    future: asyncio.Future[IngestResult]


@dataclass
class BatcherMetrics:
    flushes: Counter
    flush_size: Histogram
    deferred: Counter
    processed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BatcherMetrics:
        return cls(
            flushes=Counter(
                "lma_webhook_flushes_total",
                "Group-commit transactions of webhook events",
                ["mode"],
                registry=registry,
            ),
            flush_size=Histogram(
                "lma_webhook_flush_deliveries",
                "Deliveries per group-commit transaction",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                registry=registry,
            ),
            deferred=Counter(
                "lma_webhook_events_deferred_total",
                "Events stored as received, processed after the answer",
                registry=registry,
            ),
            processed=Counter(
                "lma_webhook_events_processed_total",
                "Deferred events processed, by outcome",
                ["status"],
                registry=registry,
            ),
        )


class EventProcessor:
    """Processes stored events left ``received``: those the batcher hands over, and (the sweeper) any older
    than ``stale_after`` in any organization, e.g. after a crash between a commit and its processing.

    Ingest comes first: the worker starts a chunk only once no delivery has arrived for ``quiet_after``
    seconds (the batcher notes each one in :meth:`ingest_seen`), so while senders keep the gateway busy every
    CPU cycle of this process goes to storing and answering them, and processing runs in the gaps. A chunk
    (at most ``chunk`` events, one transaction) is the unit: a delivery arriving meanwhile waits for no more
    than the chunk in progress, and stops the next one. The trade-off is lag: events stay ``received`` while
    the gateway is busy, but never longer than ``max_delay`` after the oldest waiting one was handed over;
    from then on the worker processes chunk after chunk until drained, sharing the CPU with ingest, so a
    sustained overload slows the answers rather than starving processing. A process that dies in between
    leaves its rows ``received`` for the sweeper.
    """

    def __init__(
        self,
        database: Database,
        *,
        on_processed: OnProcessed | None = None,
        metrics: BatcherMetrics | None = None,
        chunk: int = 25,
        sweep_interval: float = 30.0,
        stale_after: dt.timedelta = dt.timedelta(seconds=60),
        max_delay: float = 2.0,
        quiet_after: float = 0.05,
    ) -> None:
        self.database = database
        self.max_delay = max_delay
        self.quiet_after = quiet_after
        self.last_ingest = 0.0  # time.monotonic() of the latest delivery the batcher took (ingest_seen)
        self._since: float | None = None  # when the oldest event now waiting was handed over
        self.on_processed = on_processed
        self.metrics = metrics
        self.chunk = chunk
        self.sweep_interval = sweep_interval
        self.stale_after = stale_after
        self._queue: dict[int, list[int]] = {}  # org -> event ids, in arrival order
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        # One processing transaction at a time in this process (worker, sweeper, the batcher's inline flushes):
        # concurrent ones touching the same leads in different orders would deadlock.
        self.lock = asyncio.Lock()

    def ingest_seen(self) -> None:
        """A delivery arrived: hold back the next processing chunk until ingest has been quiet a while."""
        self.last_ingest = time.monotonic()

    @property
    def idle(self) -> bool:
        """Nothing handed over is waiting or being processed, and no processing transaction is open."""
        return self._idle.is_set() and not self.lock.locked()

    def submit(self, org_id: int, event_ids: list[int]) -> None:
        if event_ids:
            if self._since is None:
                self._since = time.monotonic()
            self._queue.setdefault(org_id, []).extend(event_ids)
            self._idle.clear()
            self._wake.set()

    def start(self, *, sweep: bool = True) -> None:
        self._tasks.append(asyncio.create_task(self._work(), name="webhook-processor"))
        if sweep:
            self._tasks.append(asyncio.create_task(self._sweep_forever(), name="webhook-sweeper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def drained(self) -> None:
        """Wait until everything handed over so far has been processed (tests, benchmarks, shutdown)."""
        await self._idle.wait()

    async def _work(self) -> None:
        backoff = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._yield_to_ingest()
                org_id = next(iter(self._queue))
                ids = self._queue[org_id]
                take, rest = ids[: self.chunk], ids[self.chunk :]
                if rest:
                    self._queue[org_id] = rest
                    self._queue[org_id] = self._queue.pop(org_id)  # to the back: organizations take turns
                else:
                    del self._queue[org_id]
                try:
                    result = await self.process(org_id, event_ids=take)
                except Exception as exc:  # the database is away: rows stay ``received``, try again later
                    log.warning(
                        "webhook.processing_failed org=%s events=%s error=%s retry_in=%.1fs",
                        org_id,
                        len(take),
                        type(exc).__name__,
                        backoff,
                    )
                    self._queue.setdefault(org_id, [])[:0] = take
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                if result.retry_ids:  # lost to a concurrent transaction (another process): again shortly
                    await asyncio.sleep(0.05)
                    self._queue.setdefault(org_id, []).extend(result.retry_ids)
            self._since = None
            self._idle.set()

    async def _yield_to_ingest(self) -> None:
        """Wait until no delivery arrived for ``quiet_after`` s, or the oldest waiting event is ``max_delay``
        old."""
        while True:
            now = time.monotonic()
            since = self._since if self._since is not None else now
            overdue_in = self.max_delay - (now - since)
            quiet_in = self.quiet_after - (now - self.last_ingest)
            if overdue_in <= 0 or quiet_in <= 0:
                return
            await asyncio.sleep(min(overdue_in, quiet_in))

    async def process(
        self, org_id: int, *, event_ids: list[int] | None = None, older_than: dt.timedelta | None = None
    ) -> IngestResult:
        """Claim and process ``received`` events of one organization in one transaction (``process_many``)."""
        result = IngestResult()
        async with self.lock, self.database.uow(org_id) as session:
            events = await claim_received(
                session, org_id=org_id, event_ids=event_ids, older_than=older_than, limit=self.chunk
            )
            result.event_ids.extend(event.id for event in events)
            await process_many(
                session,
                org_id=org_id,
                events=events,
                processor_of=lambda event: processor_for(event.provider),
                result=result,
            )
        if self.metrics is not None:
            for status, count in (
                ("processed", result.processed),
                ("ignored", result.ignored),
                ("failed", result.failed),
            ):
                if count:
                    self.metrics.processed.labels(status).inc(count)
        if result.lead_ids and self.on_processed is not None:
            try:
                await self.on_processed(result.lead_ids)
            except Exception:
                log.exception("webhook.on_processed_failed")
        return result

    async def sweep(self) -> int:
        """Process every organization's ``received`` events older than ``stale_after``; how many."""
        done = 0
        for org_id in await self.database.organization_ids(include_inactive=True):
            while True:
                result = await self.process(org_id, older_than=self.stale_after)
                done += len(result.event_ids) - len(result.retry_ids)
                if not result.event_ids or result.retry_ids:  # (fewer than a chunk: others hold some, go on)
                    break
        if done:
            log.warning("webhook.swept events=%s", done)
        return done

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("webhook.sweep_failed error=%s", type(exc).__name__)
            await asyncio.sleep(self.sweep_interval)


@dataclass
class _Flush:
    waiters: list[_Waiter]
    inline: bool


class IngestBatcher:
    """Collects validated deliveries and stores them with group commit (see the module docstring)."""

    def __init__(
        self,
        database: Database,
        *,
        processor: EventProcessor | None = None,
        metrics: BatcherMetrics | None = None,
        max_wait: float = 0.002,
        max_deliveries: int = 256,
        inline_limit: int = 8,
        direct_limit: int = 100,
        max_flushes: int = 2,
        overlap_min: int = 8,
    ) -> None:
        self.database = database
        self.processor = processor or EventProcessor(database, metrics=metrics)
        self.metrics = metrics
        self.max_wait = max_wait
        self.max_deliveries = max_deliveries
        self.inline_limit = inline_limit
        self.direct_limit = direct_limit
        self.max_flushes = max_flushes
        self.overlap_min = overlap_min
        self._pending: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._flushing: set[asyncio.Task[None]] = set()
        self._inline_running = False
        self._flushed_at = 0.0  # time.monotonic() when the last flush ended
        self._driver = DriverConnections(database)

    def start(self, *, sweep: bool = True) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-batcher")
            self.processor.start(sweep=sweep)

    async def stop(self) -> None:
        """Flush what is pending (its requests still get their answers), then stop."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._driver.close()
        await self.processor.stop()

    async def submit(
        self,
        *,
        org_id: int,
        integration_id: int,
        provider: str,
        events: list[Incoming],
        processor: Processor,
    ) -> IngestResult:
        """Store ``events`` durably (and process them, or hand them to the processor); the result once
        committed. Raises what the transaction raised (a database outage) or NonceReused for this delivery."""
        self.processor.ingest_seen()
        if len(events) > self.direct_limit or self._task is None or self._stopping:
            async with self.processor.lock, self.database.uow(org_id) as session:
                result = await ingest(
                    session,
                    org_id=org_id,
                    integration_id=integration_id,
                    provider=provider,
                    events=events,
                    processor=processor,
                )
            self.processor.submit(org_id, result.retry_ids)
            log.info(
                "webhook.stored mode=direct deliveries=1 accepted=%s duplicates=%s failed=%s orgs=%s events=%s",
                result.accepted,
                result.duplicates,
                result.failed,
                org_id,
                id_ranges(result.event_ids),
            )
            return result
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiter(org_id, Delivery(integration_id, provider, events), processor, future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Waiter]:
        batch, self._pending = (
            self._pending[: self.max_deliveries],
            self._pending[self.max_deliveries :],
        )
        return batch

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending or not self._can_start():
                    if self._stopping and not self._pending:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if (
                    not self._flushing
                    and self.max_wait > 0
                    and len(self._pending) < self.max_deliveries
                    and time.monotonic() - self._flushed_at > IDLE_AFTER
                ):
                    await asyncio.sleep(self.max_wait)  # was idle: the window lets concurrent requests join
                self._start(self._take())
        finally:
            if self._flushing:
                await asyncio.gather(*self._flushing, return_exceptions=True)

    def _can_start(self) -> bool:
        """Another flush may start now: none running; or (no inline one running) fewer than ``max_flushes``
        and enough deliveries waiting (``overlap_min``) to be worth their own commit."""
        if not self._flushing:
            return True
        if self._inline_running or len(self._flushing) >= self.max_flushes:
            return False
        return self._stopping or len(self._pending) >= self.overlap_min

    def _start(self, batch: list[_Waiter]) -> None:
        # Inline only when no deferred event is waiting and no other flush runs: events are then processed in
        # arrival order, never in two transactions of this process at once, and a flush never waits for
        # another one's rows while holding the processing lock.
        inline = len(batch) <= self.inline_limit and self.processor.idle and not self._flushing
        self._inline_running = inline
        task = asyncio.get_running_loop().create_task(self._flush(batch, inline))
        self._flushing.add(task)
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        self._flushed_at = time.monotonic()
        if not self._flushing:
            self._inline_running = False
        self._wake.set()

    async def _flush(self, batch: list[_Waiter], inline: bool) -> None:
        flush = _Flush(batch, inline=inline)
        try:
            for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
                try:
                    results, deferred = await self._transaction(flush)
                    break
                except Exception as exc:
                    # A deadlock with a concurrent flush (the same event sent twice at once, in another order)
                    # or a serialization failure: nothing was stored, the same transaction again will do.
                    if attempt == TRANSIENT_ATTEMPTS or not _retryable(exc):
                        raise
                    log.info("webhook.flush_retry deliveries=%s attempt=%s", len(batch), attempt)
        except BaseException as exc:
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, DBAPIError | StoreUnavailable):
                log.warning("webhook.flush_failed deliveries=%s error=%s", len(batch), type(exc).__name__)
            elif not isinstance(exc, OSError | TimeoutError):
                log.exception("webhook.flush_crashed deliveries=%s", len(batch))
            return
        for org_id, ids in deferred.items():
            self.processor.submit(org_id, ids)
        for waiter, outcome in zip(batch, results, strict=True):
            if waiter.future.done():  # the request went away; its events are stored all the same
                continue
            if isinstance(outcome, BaseException):
                waiter.future.set_exception(outcome)
            else:
                waiter.future.set_result(outcome)
        _log_flush(batch, results, inline=flush.inline)
        if self.metrics is not None:
            self.metrics.flushes.labels("inline" if flush.inline else "deferred").inc()
            self.metrics.flush_size.observe(len(batch))
            if deferred:
                self.metrics.deferred.inc(sum(len(ids) for ids in deferred.values()))

    async def _transaction(
        self, flush: _Flush
    ) -> tuple[list[IngestResult | BaseException], dict[int, list[int]]]:
        by_org: dict[int, list[int]] = {}
        for index, waiter in enumerate(flush.waiters):
            by_org.setdefault(waiter.org_id, []).append(index)
        results: list[IngestResult | BaseException] = [IngestResult() for _ in flush.waiters]
        deferred: dict[int, list[int]] = {}
        if not flush.inline and not any(e.nonce for w in flush.waiters for e in w.delivery.events):
            await self._driver_transaction(flush, by_org, results, deferred)
            return results, deferred
        async with self.database.sessionmaker() as session, session.begin():
            for org_id, indices in by_org.items():
                await session.execute(_SET_TENANT, {"org": str(org_id)})
                stored = await store_many(
                    session, org_id=org_id, deliveries=[flush.waiters[i].delivery for i in indices]
                )
                for index, outcome in zip(indices, stored, strict=True):
                    if outcome.error is not None:
                        results[index] = outcome.error
                        continue
                    results[index] = outcome.result
                    if flush.inline:
                        await self._inline(
                            session, org_id, flush.waiters[index], outcome.new_ids, outcome.result
                        )
                        if outcome.result.retry_ids:
                            deferred.setdefault(org_id, []).extend(outcome.result.retry_ids)
                    elif outcome.new_ids:
                        outcome.result.received = len(outcome.new_ids)
                        deferred.setdefault(org_id, []).extend(outcome.new_ids)
                await session.flush()
        return results, deferred

    async def _driver_transaction(
        self,
        flush: _Flush,
        by_org: dict[int, list[int]],
        results: list[IngestResult | BaseException],
        deferred: dict[int, list[int]],
    ) -> None:
        """A deferred flush (nothing processed, no nonce to look up) on a bare asyncpg connection of the
        batcher's own (:class:`DriverConnections`): for one organization a single statement (tenant, insert,
        commit: one round trip, see :data:`~lma_bot.webhooks.service.STORE_MANY_DRIVER_SQL`); no ORM, no
        pool checkout or pre-ping. A connection that broke
        is closed and reported as :class:`StoreUnavailable` (the gateway's 503); one that was idle is retried
        once on a new connection first (nothing or everything of the flush was stored: a stored event comes
        back as a duplicate, still stored once)."""
        for attempt in (1, 2):
            conn, reused = await self._driver.acquire()
            try:
                await self._store_on(conn, flush, by_org, results, deferred)
            except BaseException as exc:
                broken = _broken(exc)
                await self._driver.release(conn, discard=broken or not isinstance(exc, Exception))
                if broken:
                    if attempt == 1 and reused:
                        log.info("webhook.flush_reconnect error=%s", type(exc).__name__)
                        continue
                    raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
                raise
            await self._driver.release(conn)
            return

    @staticmethod
    async def _store_on(
        conn: Any,
        flush: _Flush,
        by_org: dict[int, list[int]],
        results: list[IngestResult | BaseException],
        deferred: dict[int, list[int]],
    ) -> None:
        """One organization (the usual flush): one statement in autocommit, which sets the tenant, inserts
        and commits in a single round trip. Several: ``BEGIN``, one such statement each, ``COMMIT``."""
        several = len(by_org) > 1
        try:
            if several:
                await conn.execute("BEGIN")
            for org_id, indices in by_org.items():
                stored = await store_many_driver(
                    conn.fetch, org_id=org_id, deliveries=[flush.waiters[i].delivery for i in indices]
                )
                for index, outcome in zip(indices, stored, strict=True):
                    results[index] = outcome.result
                    if outcome.new_ids:
                        outcome.result.received = len(outcome.new_ids)
                        deferred.setdefault(org_id, []).extend(outcome.new_ids)
            if several:
                await conn.execute("COMMIT")
        except BaseException:
            for index in (i for indices in by_org.values() for i in indices):
                results[index] = IngestResult()
            deferred.clear()
            if several and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
            raise

    async def _inline(
        self, session: AsyncSession, org_id: int, waiter: _Waiter, new_ids: list[int], result: IngestResult
    ) -> None:
        async with self.processor.lock:
            await self._process_inline(session, org_id, waiter, new_ids, result)

    @staticmethod
    async def _process_inline(
        session: AsyncSession, org_id: int, waiter: _Waiter, new_ids: list[int], result: IngestResult
    ) -> None:
        await process_many(
            session,
            org_id=org_id,
            events=await load_events(session, org_id=org_id, event_ids=new_ids),
            processor_of=lambda _: waiter.processor,
            result=result,
        )


class DriverConnections:
    """The batcher's own asyncpg connections (at most one per flush in flight), opened on first use and kept
    between flushes. Same URL and role as the application's engine (row-level security applies)."""

    def __init__(self, database: Database) -> None:
        url = database.engine.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self._idle: list[Any] = []

    async def acquire(self) -> tuple[Any, bool]:
        """A connection and whether it was kept from an earlier flush."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn, True
        conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "lma-bot web ingest"}, timeout=10
        )
        return conn, False

    async def release(self, conn: Any, *, discard: bool = False) -> None:
        if discard or conn.is_closed():
            conn.terminate()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)


def _broken(exc: BaseException) -> bool:
    """The connection is unusable: lost, closed, timed out, out of step with the server (e.g. terminated
    while idle), or the server shutting down (SQLSTATE 08, 57P)."""
    if isinstance(
        exc,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | OSError
        | TimeoutError,
    ):
        return True
    return isinstance(exc, asyncpg.PostgresError) and str(exc.sqlstate or "").startswith(("08", "57P"))


class StoreUnavailable(ConnectionError):
    """The connection broke during a flush on the asyncpg driver: nothing was stored (an OSError, so the
    gateway answers 503 with ``Retry-After``, as for the ORM's OperationalError)."""


def _retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure (from the ORM session or the bare driver), connection intact."""
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and transient(exc)
    return getattr(exc, "sqlstate", None) in TRANSIENT_SQLSTATES


def _log_flush(batch: list[_Waiter], results: list[IngestResult | BaseException], *, inline: bool) -> None:
    """One line per group commit (not per delivery): what it stored, and the stored events' ids as ranges."""
    if not log.isEnabledFor(logging.INFO):
        return
    accepted = duplicates = failed = received = refused = 0
    ids: list[int] = []
    orgs: set[int] = set()
    for waiter, outcome in zip(batch, results, strict=True):
        orgs.add(waiter.org_id)
        if isinstance(outcome, BaseException):
            refused += 1
            continue
        accepted += outcome.accepted
        duplicates += outcome.duplicates
        failed += outcome.failed
        received += outcome.received
        ids.extend(outcome.event_ids)
    log.info(
        "webhook.stored mode=%s deliveries=%s accepted=%s duplicates=%s failed=%s deferred=%s refused=%s "
        "orgs=%s events=%s",
        "inline" if inline else "deferred",
        len(batch),
        accepted,
        duplicates,
        failed,
        received,
        refused,
        ",".join(map(str, sorted(orgs))),
        id_ranges(ids),
    )


def id_ranges(ids: list[int]) -> str:
    """``"3-7,9,12-13"``: sorted ids, consecutive runs collapsed (a flush's events are mostly consecutive)."""
    parts: list[str] = []
    start = previous = None
    for value in sorted(ids):
        if previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(f"{start}-{previous}" if start != previous else str(start))
        start = previous = value
    if start is not None:
        parts.append(f"{start}-{previous}" if start != previous else str(start))
    return ",".join(parts)
