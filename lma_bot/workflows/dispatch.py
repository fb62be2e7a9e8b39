"""Sending workflow executions to n8n: after the commit, in-process, with bounded concurrency and retries;
plus a sweeper for executions a crash left pending.

- :func:`attach` wires a :class:`Dispatcher` to a :class:`~lma_bot.db.Database`: every session of that
  database carries the dispatcher in ``session.info``, and an ``after_commit`` listener hands the session's
  new executions (``OUTBOX_KEY``) to it. A rollback drops them. Sessions of a database without a dispatcher
  (the CLI) leave their executions to a sweeper.
- One attempt: claim the row (lease), POST the signed payload to the checked address, record the outcome.
  Retried, with exponential backoff and full jitter up to ``max_attempts``: timeouts, connection errors,
  5xx, and 429 (no sooner than its ``Retry-After``). Final: other 4xx, redirects (never followed), refused
  targets, a missing integration or secret.
- The sweeper visits every organization (``Database.organization_ids``, the documented cross-tenant path)
  and claims due pending rows with ``FOR UPDATE SKIP LOCKED`` plus a lease, so any number of processes may
  sweep at once and each attempt is made once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from sqlalchemy import event
from sqlalchemy.orm import Session

from lma_bot.crypto import SecretBox, SecretDecryptError
from lma_bot.db import Database
from lma_bot.workflows import payloads
from lma_bot.workflows.service import OUTBOX_KEY, Claimed, Outcome, claim, claim_due, record_outcome
from lma_bot.workflows.ssrf import GuardedResolver, TargetPolicy, TargetRefused, check_address, parse_url

log = logging.getLogger(__name__)

DISPATCHER_KEY = "lma.workflow_dispatcher"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 2.0
    max_seconds: float = 600.0
    timeout_seconds: float = 10.0
    max_retry_after_seconds: float = 3600.0

    def backoff(self, retries_so_far: int) -> float:
        """Full jitter: uniform in [base * 2^n / 2, base * 2^n], capped."""
        ceiling = min(self.max_seconds, self.base_seconds * (2**retries_so_far))
        return random.uniform(ceiling / 2, ceiling)


def retry_after(value: str | None, policy: RetryPolicy) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), policy.max_retry_after_seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, min((when - dt.datetime.now(dt.UTC)).total_seconds(), policy.max_retry_after_seconds))


class Dispatcher:
    def __init__(
        self,
        database: Database,
        box: SecretBox | None,
        *,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        sweep_every: float | None = 30.0,
        resolver_factory: type[AbstractResolver] | None = None,
    ) -> None:
        self.database = database
        self.box = box
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.sweep_every = sweep_every
        self.lease_seconds = self.retry.timeout_seconds + 30.0
        self._resolver_factory = resolver_factory
        self._queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._http: dict[bool, aiohttp.ClientSession] = {}
        self._idle = asyncio.Event()
        self._busy = 0
        self._idle.set()

    # -- lifecycle

    async def start(self) -> None:
        for allow in (False, True):
            base = self._resolver_factory() if self._resolver_factory else None
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(TargetPolicy(allow_self_hosted=allow), base),
                limit=self.concurrency,
                use_dns_cache=False,
            )
            self._http[allow] = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        if self.sweep_every is not None:
            self._tasks.append(asyncio.create_task(self._sweep_loop()))

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for http in self._http.values():
            await http.close()
        self._http = {}

    # -- intake

    def submit(self, org_id: int, execution_id: int) -> None:
        """Queue an attempt (called after the commit that wrote the execution, or when a retry is due)."""
        self._busy += 1
        self._idle.clear()
        self._queue.put_nowait((org_id, execution_id))

    def _later(self, delay: float, org_id: int, execution_id: int) -> None:
        loop = asyncio.get_running_loop()
        self._busy += 1  # the retry counts as work in flight
        self._idle.clear()
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            self._queue.put_nowait((org_id, execution_id))

        handle = loop.call_later(delay, fire)
        holder.append(handle)
        self._timers.add(handle)

    async def wait_idle(self) -> None:
        """Until every queued attempt and scheduled retry has run (tests wrap it in a timeout)."""
        await self._idle.wait()

    async def _worker(self) -> None:
        while True:
            org_id, execution_id = await self._queue.get()
            try:
                await self.attempt(org_id, execution_id)
            except Exception:
                log.exception("workflows.dispatch.crashed org=%s execution=%s", org_id, execution_id)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    # -- one attempt

    async def attempt(self, org_id: int, execution_id: int) -> Outcome | None:
        """Claim, send, record. None when someone else holds it or it is no longer pending."""
        async with self.database.uow(org_id) as session:
            claimed = await claim(
                session, org_id=org_id, execution_id=execution_id, lease_seconds=self.lease_seconds
            )
        if claimed is None:
            return None
        return await self._send_and_record(claimed)

    async def _send_and_record(self, claimed: Claimed) -> Outcome:
        outcome = await self.send(claimed)
        async with self.database.uow(claimed.organization_id) as session:
            status = await record_outcome(
                session, org_id=claimed.organization_id, execution_id=claimed.execution_id, outcome=outcome
            )
        log.info(
            "workflows.dispatch.attempt org=%s execution=%s attempt=%s http=%s status=%s retry_in=%s error=%s",
            claimed.organization_id,
            claimed.execution_id,
            claimed.attempt,
            outcome.response_status,
            status,
            None if outcome.retry_in is None else round(outcome.retry_in, 2),
            outcome.error,
        )
        if outcome.retry_in is not None and self._tasks:
            self._later(outcome.retry_in, claimed.organization_id, claimed.execution_id)
        return outcome

    def _retry_or_fail(
        self, claimed: Claimed, error: str, status: int | None, at_least: float = 0.0
    ) -> Outcome:
        if claimed.attempt >= self.retry.max_attempts:
            return Outcome(
                delivered=False,
                response_status=status,
                error=f"{error} (gave up after {claimed.attempt} attempts)",
            )
        delay = max(self.retry.backoff(claimed.attempt - 1), at_least)
        return Outcome(delivered=False, response_status=status, error=error, retry_in=delay)

    async def send(self, claimed: Claimed) -> Outcome:
        """One POST of ``claimed``; never raises for the target's failures."""
        if claimed.problem is not None:
            return Outcome(delivered=False, error=claimed.problem)
        try:
            target = parse_url(claimed.url)
            if target.literal is not None:
                check_address(target.literal, claimed.policy)
        except TargetRefused as exc:
            return Outcome(delivered=False, error=str(exc))
        if self.box is None:
            return Outcome(
                delivered=False, error="LMA_ENCRYPTION_KEYS is not set: cannot read the n8n secret"
            )
        try:
            secrets = (
                self.box.decrypt_json(claimed.encrypted_secrets or "") if claimed.encrypted_secrets else {}
            )
        except SecretDecryptError as exc:
            return Outcome(delivered=False, error=str(exc))
        data = claimed.input_data
        raw = payloads.body(
            execution_id=claimed.execution_id,
            organization_id=claimed.organization_id,
            workflow=claimed.workflow,
            event=str(data.get("event", claimed.event)),
            occurred_at=str(data.get("occurred_at")),
            lead=data.get("lead"),
            actor=data.get("actor") or {"type": "system"},
            changes=data.get("changes") or {},
        )
        try:
            headers = payloads.signed_headers(
                str(secrets.get("webhook_secret", "")),
                raw,
                execution_id=claimed.execution_id,
                event=claimed.event,
                attempt=claimed.attempt,
            )
        except ValueError as exc:
            return Outcome(delivered=False, error=str(exc))
        http = self._http[claimed.policy.allow_self_hosted]
        timeout = aiohttp.ClientTimeout(total=self.retry.timeout_seconds)
        try:
            async with http.post(
                target.url, data=raw, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                status = response.status
                snippet = (await response.content.read(300)).decode("utf-8", "replace").strip()
                if 200 <= status < 300:
                    return Outcome(delivered=True, response_status=status)
                if 300 <= status < 400:
                    where = response.headers.get("Location", "?")
                    return Outcome(
                        delivered=False,
                        response_status=status,
                        error=f"HTTP {status} redirect to {where[:200]} refused: redirects are not followed; "
                        "use the final n8n webhook URL",
                    )
                message = f"HTTP {status}" + (f": {snippet[:200]}" if snippet else "")
                if status == 429:
                    wait = retry_after(response.headers.get("Retry-After"), self.retry) or 0.0
                    return self._retry_or_fail(claimed, message, status, at_least=wait)
                if status >= 500:
                    return self._retry_or_fail(claimed, message, status)
                return Outcome(delivered=False, response_status=status, error=message)
        except TargetRefused as exc:
            return Outcome(delivered=False, error=str(exc))
        except aiohttp.ClientConnectorError as exc:
            refused = _refusal(exc)
            if refused is not None:
                return Outcome(delivered=False, error=str(refused))
            return self._retry_or_fail(claimed, f"cannot connect: {exc}", None)
        except TimeoutError:
            return self._retry_or_fail(claimed, f"timed out after {self.retry.timeout_seconds:g} s", None)
        except aiohttp.ClientError as exc:
            return self._retry_or_fail(claimed, f"{type(exc).__name__}: {exc}", None)

    # -- the sweeper

    async def sweep_once(self, *, limit: int = 50) -> int:
        """Claim and send every due pending execution of every organization; how many were attempted."""
        attempted = 0
        for org_id in await self.database.organization_ids(include_inactive=True):
            async with self.database.uow(org_id) as session:
                batch = await claim_due(session, org_id=org_id, lease_seconds=self.lease_seconds, limit=limit)
            if not batch:
                continue
            log.info("workflows.sweep.claimed org=%s executions=%s", org_id, [c.execution_id for c in batch])
            semaphore = asyncio.Semaphore(self.concurrency)
            await asyncio.gather(*(self._bounded(semaphore, item) for item in batch))
            attempted += len(batch)
        return attempted

    async def _bounded(self, semaphore: asyncio.Semaphore, item: Claimed) -> None:
        async with semaphore:
            await self._send_and_record(item)

    async def _sweep_loop(self) -> None:
        assert self.sweep_every is not None
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("workflows.sweep.failed")
            await asyncio.sleep(self.sweep_every)


def _refusal(exc: BaseException) -> TargetRefused | None:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, TargetRefused):
            return current
        current = current.__cause__ or current.__context__
    return None


# ---------------------------------------------------------------- after-commit wiring


def _after_commit(session: Session) -> None:
    items: list[tuple[int, int]] | None = session.info.pop(OUTBOX_KEY, None)
    dispatcher = session.info.get(DISPATCHER_KEY)
    if items and isinstance(dispatcher, Dispatcher):
        for org_id, execution_id in items:
            dispatcher.submit(org_id, execution_id)


def _after_rollback(session: Session) -> None:
    session.info.pop(OUTBOX_KEY, None)


def attach(database: Database, dispatcher: Dispatcher | None) -> None:
    """Let sessions of ``database`` hand their committed executions to ``dispatcher`` (None: detach)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
    info: dict[str, Any] = dict(database.sessionmaker.kw.get("info") or {})
    if dispatcher is None:
        info.pop(DISPATCHER_KEY, None)
    else:
        info[DISPATCHER_KEY] = dispatcher
    database.sessionmaker.configure(info=info)


@contextlib.asynccontextmanager
async def running(database: Database, box: SecretBox | None, **options: Any) -> AsyncIterator[Dispatcher]:
    """A started dispatcher attached to ``database``; detached and stopped on exit (pending rows stay)."""
    dispatcher = Dispatcher(database, box, **options)
    await dispatcher.start()
    attach(database, dispatcher)
    try:
        yield dispatcher
    finally:
        attach(database, None)
        await dispatcher.stop()
