"""The web app over real HTTP on loopback: liveness, readiness naming what is down, Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.test_utils import TestServer

from lma_bot.config import Settings
from lma_bot.entrypoints.web import create_app
from tests.conftest import ScratchDatabase, Servers

DEAD_PG = "postgresql+asyncpg://postgres@127.0.0.1:9/nothing"
DEAD_REDIS = "redis://127.0.0.1:9/0"


def _settings(database_url: str, redis_url: str) -> Settings:
    return Settings(_env_file=None, DATABASE_URL=database_url, REDIS_URL=redis_url)  # type: ignore[call-arg]


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Callable[[str], str]]:
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield lambda path: str(server.make_url(path))
    finally:
        await server.close()


async def test_healthz_readyz_and_metrics(test_database: ScratchDatabase, servers: Servers) -> None:
    async with (
        serve(_settings(test_database.owner_url, servers.redis_url)) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(url("/healthz")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        async with http.get(url("/readyz")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}
        async with http.get(url("/nope")) as response:
            assert response.status == 404
        async with http.get(url("/metrics")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            body = await response.text()
    assert 'lma_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body
    assert 'lma_http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in body
    assert 'route="unmatched",status="404"' in body
    assert "lma_http_request_duration_seconds_bucket" in body


async def test_readyz_names_postgres_when_it_is_down(servers: Servers) -> None:
    async with serve(_settings(DEAD_PG, servers.redis_url)) as url, aiohttp.ClientSession() as http:
        async with http.get(url("/readyz")) as response:
            assert response.status == 503
            body = await response.json()
    assert body["down"] == ["postgres"]
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["postgres"].startswith("down: ")


async def test_readyz_names_redis_and_postgres_when_both_are_down() -> None:
    async with serve(_settings(DEAD_PG, DEAD_REDIS)) as url, aiohttp.ClientSession() as http:
        async with http.get(url("/readyz")) as response:
            assert response.status == 503
            body = await response.json()
        async with http.get(url("/healthz")) as response:
            assert response.status == 200  # alive even when dependencies are not
    assert body["down"] == ["postgres", "redis"]
