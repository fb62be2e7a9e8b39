"""Bolt's lazy listeners, run so that acks come first.

Bolt starts every lazy listener (the part of ``/lead`` that does the work and answers via ``response_url``)
with ``asyncio.ensure_future`` as it acks: a burst of commands becomes as many concurrent jobs, each holding
database and Redis connections and competing for the one event loop with the acks Slack waits for (3 s).
:class:`BoundedLazyListenerRunner` replaces Bolt's runner:

- at most ``limit`` lazy jobs run at once; the rest wait their turn in arrival order;
- ack priority: while Slack requests are in flight (:class:`AckGate`, counted by ``SlackGateway``), a job
  about to start waits until they are answered, at most ``ack_priority`` seconds, and not at all once it
  has waited ``max_defer`` seconds since its command arrived - so lazy work is delayed by a burst, never
  starved by steady traffic;
- at most ``max_pending`` jobs wait or run: past that (a flood the process cannot keep up with), a new job
  is not queued; its user is told at once, through its ``response_url``, that the bot is busy and to try again
  (``slack.lazy.shed`` is logged), instead of an ever longer queue whose answers come after Slack's
  ``response_url`` has expired;
- one pooled ``aiohttp`` session for ``respond()`` (``response_url`` posts) and Web API calls of lazy jobs,
  instead of a new session (and TCP connection) per post;
- the request handed to a lazy listener is a shallow copy with its own context (standard properties
  shared), instead of Bolt's ``copy.deepcopy`` of the whole request (client, logger and all), which is done
  on the ack path. Bolt deep-copies for its thread runner; ours run on the
  same event loop and never write to the original request.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_bolt.lazy_listener.async_internals import to_runnable_function
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from slack_sdk.webhook.webhook_response import WebhookResponse

log = logging.getLogger(__name__)

LAZY_LIMIT = 4
MAX_PENDING = 5000  # about 5-50 s of queued work at this machine's rates (show: ~1,000 jobs/s)
BUSY_TEXT = (
    ":hourglass: lma-bot is very busy right now and could not take this. Please try again in a minute."
)
ACK_PRIORITY_SECONDS = 0.25
MAX_DEFER_SECONDS = 2.0
HTTP_TIMEOUT_SECONDS = 10


class AckGate:
    """Counts Slack requests being answered; lazy jobs wait (briefly) for it to be idle."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.in_flight == 0:
                self._idle.set()
        return self._idle

    @contextlib.contextmanager
    def request(self) -> Any:
        self.in_flight += 1
        self._event().clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._event().set()

    async def wait_idle(self, seconds: float) -> bool:
        """True once no request is in flight; False if still busy after ``seconds``."""
        if self.in_flight == 0:
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self._event().wait(), seconds)
        except TimeoutError:
            return False
        return True


class PooledRespond(AsyncRespond):
    """Bolt's ``respond()``, posting through a shared session (Bolt's opens a new one per call)."""

    def __init__(self, *, response_url: str | None, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url)
        self._session = session

    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        if isinstance(text, dict):
            message = _build_message(**text)
        else:
            message = _build_message(
                text=text,
                blocks=blocks,
                attachments=attachments,
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
                unfurl_links=unfurl_links,
                unfurl_media=unfurl_media,
                thread_ts=thread_ts,
                metadata=metadata,
            )
        webhook = AsyncWebhookClient(
            url=self.response_url, session=self._session, timeout=HTTP_TIMEOUT_SECONDS
        )
        return await webhook.send_dict(message)


class BoundedLazyListenerRunner(AsyncLazyListenerRunner):
    """Runs Bolt's lazy listeners ``limit`` at a time, after the acks in flight (see the module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        gate: AckGate | None = None,
        limit: int = LAZY_LIMIT,
        max_pending: int = MAX_PENDING,
        ack_priority: float = ACK_PRIORITY_SECONDS,
        max_defer: float = MAX_DEFER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.gate = gate or AckGate()
        self.limit = limit
        self.max_pending = max_pending
        self.shed = 0  # jobs refused because ``max_pending`` were waiting or running
        self.ack_priority = ack_priority
        self.max_defer = max_defer
        self.clock = clock
        self.running = 0
        self.peak = 0
        # Jobs wait in a queue (no task each: the ack path only appends); up to ``limit`` workers run them.
        self._queue: deque[tuple[Callable[..., Awaitable[None]], AsyncBoltRequest, float]] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._notices: set[asyncio.Future[WebhookResponse]] = set()  # "busy" answers being posted
        self._session: aiohttp.ClientSession | None = None

    @property
    def pending(self) -> int:
        """Jobs started and not finished (running or queued)."""
        return len(self._queue) + self.running

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
                connector=aiohttp.TCPConnector(limit=max(self.limit * 2, 10)),
            )
        return self._session

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        if self.pending >= self.max_pending:
            self._shed(request)
            return
        self._queue.append((function, request, self.clock()))
        if len(self._workers) < self.limit:
            worker = asyncio.ensure_future(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _shed(self, request: AsyncBoltRequest) -> None:
        """Refuse a job (the queue is full): tell its user through ``response_url``, when it has one."""
        self.shed += 1
        response_url = request.context.response_url
        log.warning("slack.lazy.shed pending=%d shed=%d", self.pending, self.shed)
        if response_url is None:
            return
        respond = PooledRespond(response_url=response_url, session=self.session())
        task = asyncio.ensure_future(
            respond(text=BUSY_TEXT, response_type="ephemeral", replace_original=False)
        )
        self._notices.add(task)
        task.add_done_callback(self._notice_done)

    def _notice_done(self, task: asyncio.Future[WebhookResponse]) -> None:
        self._notices.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("slack.lazy.shed_notice_failed error=%s", type(task.exception()).__name__)

    def _share_session(self, request: AsyncBoltRequest) -> None:
        """Point the (copied) request's ``respond`` and ``client`` at the pooled session."""
        context = request.context
        session = self.session()
        if context.response_url is not None:
            context["respond"] = PooledRespond(response_url=context.response_url, session=session)
        client = context.get("client")
        if isinstance(client, AsyncWebClient) and client.session is None:
            client.session = session

    async def _work(self) -> None:
        while self._queue:
            function, request, queued_at = self._queue.popleft()
            budget = min(self.ack_priority, self.max_defer - (self.clock() - queued_at))
            self.running += 1  # counted from here, so ``pending`` never misses a job taken off the queue
            try:
                await self.gate.wait_idle(budget)
                self.peak = max(self.peak, self.running)
                self._share_session(request)
                await to_runnable_function(internal_func=function, logger=self.logger, request=request)
            finally:
                self.running -= 1

    async def drain(self, seconds: float) -> bool:
        """Wait for every started job to finish (True), or give up after ``seconds`` (False)."""
        deadline = time.monotonic() + seconds
        while self._workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(list(self._workers), timeout=remaining)
        return True

    async def aclose(self, grace: float = 5.0) -> None:
        """Let started jobs finish (up to ``grace`` seconds), cancel the rest, close the pooled session."""
        if not await self.drain(grace):
            log.warning("slack.lazy.cancelled pending=%s", self.pending)
            self._queue.clear()
            workers = list(self._workers)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if self._notices:
            await asyncio.wait(list(self._notices), timeout=grace)
        if self._session is not None:
            await self._session.close()
            self._session = None


#: Per-call helpers of the original request that the lazy copy must build for itself.
_PER_CALL = ("ack", "respond", "say")


def lazy_request(request: AsyncBoltRequest, lazy_function_name: str) -> AsyncBoltRequest:
    """The request a lazy listener gets: a shallow copy (body, headers and query shared: neither side writes
    them) with its own context, whose standard properties (``client``, ``authorize_result``, ids,
    ``response_url`` ...) are shared and other ones deep-copied as Bolt does."""
    context = request.context.to_copyable()
    for name in _PER_CALL:
        context.pop(name, None)
    copied = copy.copy(request)
    copied.context = context
    copied.lazy_only = True
    copied.lazy_function_name = lazy_function_name
    return copied


def bound_lazy_listeners(app: AsyncApp, gate: AckGate, **options: Any) -> BoundedLazyListenerRunner:
    """Install a :class:`BoundedLazyListenerRunner` and :func:`lazy_request` in ``app``'s listener runner
    (Bolt has no public hook for either; ``tests/test_slack_lazy.py`` pins the attributes used)."""
    listener_runner = app._async_listener_runner
    runner = BoundedLazyListenerRunner(listener_runner.lazy_listener_runner.logger, gate=gate, **options)
    listener_runner.lazy_listener_runner = runner
    listener_runner._build_lazy_request = lazy_request  # type: ignore[method-assign,assignment]
    return runner
