"""``POST /slack/events``: our guard runs before Bolt.

A missing or non-numeric ``X-Slack-Request-Timestamp``, one more than 300 s from now, or a bad ``v0``
signature is a 401 and nothing else happens. ``url_verification`` echoes the challenge. An Events API
delivery whose ``event_id`` was already accepted (Slack retries with ``X-Slack-Retry-Num``) is acknowledged
without a second side effect. A payload whose ``response_url`` is not on Slack's host is refused (400)
before any outbound call. Everything else goes to Bolt. Requests are counted while they are answered
(``SlackDeps.ack_gate``): lazy listeners wait briefly for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from redis.exceptions import RedisError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from handlers.slack.deps import SlackDeps

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300
EVENT_DEDUPE_SECONDS = 3600
SLACK_RESPONSE_HOST = "hooks.slack.com"


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, *, now: float
) -> str | None:
    """None when the request is Slack's; else why not (logged, never shown in detail)."""
    if not timestamp:
        return "missing timestamp"
    if not (timestamp.isascii() and timestamp.isdigit()):
        return "non-numeric timestamp"
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "timestamp outside the 5 minute window"
    if not signature:
        return "missing signature"
    if not hmac.compare_digest(expected_signature(secret, timestamp, body), signature):
        return "signature mismatch"
    return None


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The request as Slack meant it: JSON (Events API), or a form, with ``payload=`` JSON decoded."""
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("application/json"):
        data = json.loads(text or "{}")
        return data if isinstance(data, dict) else {}
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if "payload" in form:
        payload = json.loads(form["payload"])
        return payload if isinstance(payload, dict) else {}
    return form


def response_urls(data: dict[str, Any]) -> list[str]:
    urls = [data["response_url"]] if isinstance(data.get("response_url"), str) else []
    for item in data.get("response_urls") or []:
        if isinstance(item, dict) and isinstance(item.get("response_url"), str):
            urls.append(item["response_url"])
    return urls


@dataclass
class SlackGateway:
    """Verifies and routes Slack requests into the Bolt app."""

    bolt: AsyncApp
    deps: SlackDeps
    signing_secret: str
    clock: Callable[[], float] = field(default=time.time)

    def response_url_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname == SLACK_RESPONSE_HOST:
            return True
        api = urlsplit(self.deps.settings.slack_api_url)
        return api.hostname != "slack.com" and parts.netloc == api.netloc and parts.scheme == api.scheme

    async def first_delivery(self, event_id: str) -> bool:
        try:
            key = self.deps.keys.dedupe("slack-event", event_id)
            return bool(await self.deps.redis.set(key, "1", nx=True, ex=EVENT_DEDUPE_SECONDS))
        except RedisError:
            log.warning("slack.event.dedupe_unavailable event_id=%s", event_id)
            return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Counted while answered, so lazy listeners give way to acks (``handlers.slack.lazy``).
        with self.deps.ack_gate.request():
            return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = verify(
            self.signing_secret,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            body,
            now=self.clock(),
        )
        if problem is not None:
            log.warning("slack.request.rejected reason=%s", problem)
            return web.json_response({"error": "invalid Slack signature"}, status=401)
        try:
            data = parse_body(request.headers.get("Content-Type", ""), body)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "malformed body"}, status=400)
        kind = data.get("type")
        if kind == "url_verification":
            return web.json_response({"challenge": data.get("challenge", "")})
        event_id = data.get("event_id") if kind == "event_callback" else None
        if isinstance(event_id, str) and not await self.first_delivery(event_id):
            log.info(
                "slack.event.duplicate event_id=%s retry=%s",
                event_id,
                request.headers.get("X-Slack-Retry-Num"),
            )
            return web.Response(status=200)
        for url in response_urls(data):
            if not self.response_url_allowed(url):
                log.warning("slack.request.bad_response_url host=%s", urlsplit(url).netloc)
                return web.json_response({"error": "response_url is not on Slack's host"}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"),
            query=request.query_string,
            headers={k: v for k, v in request.headers.items()},
        )
        response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)
