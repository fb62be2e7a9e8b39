"""Operational endpoints: liveness, readiness (naming what is down) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from handlers import context

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpMetrics:
    """Request counts and latencies by route; each label set's child looked up once, then kept (the route
    template, never the raw path, so the set stays small)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}
        self.requests = Counter(
            "lma_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "lma_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        count = self._counts.get((method, route, status))
        if count is None:
            count = self._counts[(method, route, status)] = self.requests.labels(method, route, str(status))
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = self.latency.labels(method, route)
        count.inc()
        latency.observe(seconds)


HTTP_METRICS = web.AppKey("http_metrics", HttpMetrics)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[HTTP_METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.observe(request.method, _route_name(request), status, time.perf_counter() - started)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except TimeoutError:
        return name, f"down: no answer within {READY_TIMEOUT_S:g}s"
    except Exception as exc:  # any failure means not ready; the reason is shown, never a traceback
        log.warning("readyz.%s.down error=%s", name, type(exc).__name__)
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    results = dict(
        await asyncio.gather(
            _check("postgres", app[context.DATABASE].ping()),
            _check("redis", app[context.REDIS].ping()),
        )
    )
    down = [name for name, state in results.items() if state != "ok"]
    if down:
        return web.json_response(
            {"status": "unavailable", "down": down, "checks": results},
            status=503,
        )
    return web.json_response({"status": "ok", "checks": results})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[context.METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app[HTTP_METRICS] = HttpMetrics(app[context.METRICS])
    app.middlewares.append(metrics_middleware)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
