"""The webhook gateway: ``POST /webhooks/n8n/{key}`` and ``POST /webhooks/email/{provider}/{key}``.

Order of checks (CONTRACT.md): size (413, before reading it all), key (404), authentication (401), payload
(400), then the durable write (503 when it cannot be made). The answer is 2xx only after the commit; a
duplicate, an ignored event type, or an event whose processing failed (stored, replayable) is still 2xx.

The durable write is group-committed with other requests' (:mod:`lma_bot.webhooks.batcher`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from handlers import context
from lma_bot.crypto import SecretBox, SecretDecryptError
from lma_bot.db import Database
from lma_bot.integrations.service import integration_secrets, key_hash
from lma_bot.leads.cache import LeadCardCache
from lma_bot.models import Integration
from lma_bot.webhooks import email_events, n8n, n8n_actions
from lma_bot.webhooks.batcher import BatcherMetrics, EventProcessor, IngestBatcher
from lma_bot.webhooks.providers import mailgun, postmark, sendgrid
from lma_bot.webhooks.service import Incoming, IngestResult, Processor
from lma_bot.webhooks.types import Verified, WebhookAuthError, WebhookPayloadError

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
CACHE_SECONDS = 30.0
RETRY_AFTER = "5"
EMAIL_PROVIDERS: dict[str, ModuleType] = {"sendgrid": sendgrid, "mailgun": mailgun, "postmark": postmark}


@dataclass(frozen=True)
class Target:
    org_id: int
    integration_id: int
    provider: str
    secrets: dict[str, str]
    configuration: dict[str, Any]


class Gateway:
    def __init__(
        self,
        database: Database,
        box: SecretBox | None,
        cards: LeadCardCache,
        deliveries: Counter,
        batcher: IngestBatcher | None = None,
    ) -> None:
        self.database = database
        self.box = box
        self.cards = cards
        self.deliveries = deliveries
        self.batcher = batcher or IngestBatcher(database)
        self._targets: dict[str, tuple[float, Target | None]] = {}
        self._lookups: dict[str, asyncio.Future[Target | None]] = {}
        self._outcomes: dict[tuple[str, str], Any] = {}  # (provider, outcome) -> its counter child
        self.clock: Callable[[], float] = time.time

    def count(self, provider: str, outcome: str) -> None:
        child = self._outcomes.get((provider, outcome))
        if child is None:
            child = self._outcomes[(provider, outcome)] = self.deliveries.labels(provider, outcome)
        child.inc()

    async def target(self, key: str) -> Target | None:
        """The integration behind a webhook key, cached briefly (a disabled integration stops within 30 s).

        Concurrent requests for a key not cached share one lookup (a burst on a cold or expired key would
        otherwise take one pooled connection per request)."""
        digest = key_hash(key)
        cached = self._targets.get(digest)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        running = self._lookups.get(digest)
        if running is None:
            running = asyncio.ensure_future(self._lookup(digest))
            self._lookups[digest] = running
            running.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(running)

    async def _lookup(self, digest: str) -> Target | None:
        now = time.monotonic()
        found = await self.database.resolve_webhook_key(digest)
        target = None
        if found is not None:
            org_id, integration_id = found
            async with self.database.uow(org_id) as session:
                row = await session.get(Integration, (org_id, integration_id))
            if row is not None:
                secrets = integration_secrets(row, self.box) if self.box and row.encrypted_secrets else {}
                target = Target(org_id, integration_id, row.provider_name, secrets, dict(row.configuration))
        if len(self._targets) > 10_000:
            self._targets.clear()
        self._targets[digest] = (now, target)
        return target


GATEWAY = web.AppKey("webhook_gateway", Gateway)


def _answer(status: int, message: str, **extra: Any) -> web.Response:
    body = {"error": message, **extra} if status >= 400 else {"status": message, **extra}
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
    return web.json_response(body, status=status, headers=headers)


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is over the limit (by Content-Length, or while reading a chunked one)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError | InterfaceError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)


async def n8n_webhook(request: web.Request) -> web.Response:
    return await _handle(request, "n8n")


async def email_webhook(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    if provider not in EMAIL_PROVIDERS:
        return _answer(404, f"unknown provider {provider!r}; one of {', '.join(EMAIL_PROVIDERS)}")
    return await _handle(request, provider)


async def _handle(request: web.Request, provider: str) -> web.Response:
    gateway = request.app[GATEWAY]
    outcome = "error"
    try:
        response, outcome = await _deliver(request, gateway, provider)
        return response
    finally:
        gateway.count(provider, outcome)


async def _deliver(request: web.Request, gateway: Gateway, provider: str) -> tuple[web.Response, str]:
    body = await _read_body(request)
    if body is None:
        return _answer(413, f"body over {MAX_BODY} bytes"), "too_large"
    try:
        target = await gateway.target(request.match_info["key"])
    except SecretDecryptError:
        log.error("webhook.secrets_undecryptable provider=%s", provider)
        return _answer(
            503, "integration secrets cannot be decrypted; check LMA_ENCRYPTION_KEYS"
        ), "unavailable"
    except Exception as exc:
        if _unavailable(exc):
            log.warning("webhook.db_unavailable provider=%s error=%s", provider, type(exc).__name__)
            return _answer(503, "storage unavailable, retry later"), "unavailable"
        raise
    if target is None or target.provider != provider:
        return _answer(404, "unknown webhook key"), "unknown_key"
    try:
        verified, incoming, processor = _authenticate_and_parse(
            request, target, provider, body, gateway.clock()
        )
    except WebhookAuthError as exc:
        log.info(
            "webhook.unauthenticated provider=%s integration=%s reason=%s",
            provider,
            target.integration_id,
            exc,
        )
        return _answer(401, "authentication failed"), "unauthenticated"
    except WebhookPayloadError as exc:
        return _answer(400, str(exc)), "malformed"
    try:
        result = await gateway.batcher.submit(
            org_id=target.org_id,
            integration_id=target.integration_id,
            provider=provider,
            events=incoming,
            processor=processor,
        )
    except WebhookAuthError as exc:  # a replayed nonce
        log.info(
            "webhook.replayed provider=%s integration=%s reason=%s", provider, target.integration_id, exc
        )
        return _answer(401, "authentication failed"), "unauthenticated"
    except Exception as exc:
        if _unavailable(exc):
            log.warning("webhook.db_unavailable provider=%s error=%s", provider, type(exc).__name__)
            return _answer(503, "storage unavailable, retry later"), "unavailable"
        raise
    del verified
    _log_result(provider, target, result)
    if result.lead_ids:
        asyncio.get_running_loop().create_task(gateway.cards.invalidate(*result.lead_ids))
    outcome = "failed" if result.failed else "duplicate" if not result.accepted else "accepted"
    return _answer(200, outcome, **result.as_json()), outcome


def _authenticate_and_parse(
    request: web.Request, target: Target, provider: str, body: bytes, now: float
) -> tuple[Verified, list[Incoming], Processor]:
    if provider == "n8n":
        header = target.configuration.get("header_name")
        verified = n8n.verify(request.headers, body, target.secrets, now, header_name=header)
        message, document = n8n.parse(body)
        event = Incoming(
            event_type=message.type,
            provider_event_id=n8n.event_id(message, body),
            payload=document,
            raw=body.decode() if body.isascii() else None,  # UTF-8 for sure: stored as sent
        )
        return verified, [event], n8n_actions.process
    module = EMAIL_PROVIDERS[provider]
    verified = module.verify(request.headers, body, target.secrets, now)
    events = module.parse(body, request.content_type)
    return verified, [email_events.incoming(e, verified.nonce) for e in events], email_events.process


def _log_result(provider: str, target: Target, result: IngestResult) -> None:
    """Per delivery at DEBUG only: the batcher logs one ``webhook.stored`` line per group commit (INFO) with
    the events' ids, which lead to the organization and integration."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    log.debug(
        "webhook.delivery provider=%s org=%s integration=%s accepted=%s duplicates=%s failed=%s "
        "deferred=%s events=%s",
        provider,
        target.org_id,
        target.integration_id,
        result.accepted,
        result.duplicates,
        result.failed,
        result.received,
        ",".join(str(i) for i in result.event_ids[:20]),
    )


async def _gateway_ctx(app: web.Application) -> Any:
    settings = app[context.SETTINGS]
    box = SecretBox(settings.encryption_keys) if settings.encryption_keys else None
    cards = LeadCardCache(app[context.REDIS], app[context.REDIS_KEYS])
    deliveries = Counter(
        "lma_webhook_deliveries_total",
        "Webhook deliveries by provider and outcome",
        ["provider", "outcome"],
        registry=app[context.METRICS],
    )
    database = app[context.DATABASE]
    metrics = BatcherMetrics.create(app[context.METRICS])

    async def invalidate(lead_ids: set[int]) -> None:
        await cards.invalidate(*lead_ids)

    processor = EventProcessor(database, on_processed=invalidate, metrics=metrics)
    batcher = IngestBatcher(database, processor=processor, metrics=metrics)
    app[GATEWAY] = Gateway(database, box, cards, deliveries, batcher)
    batcher.start()
    yield
    await batcher.stop()


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/n8n/{key}", n8n_webhook)
    app.router.add_post("/webhooks/email/{provider}/{key}", email_webhook)
    app.cleanup_ctx.append(_gateway_ctx)
