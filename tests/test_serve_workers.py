"""``lma-bot serve --workers N``: N whole web processes on one port (SO_REUSEPORT) under one parent. Webhook
deliveries over many connections are each stored and processed exactly once whichever worker takes them;
SIGTERM stops every worker (exit 0); a worker that dies takes the others down with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.webhooks import n8n
from tests.conftest import ScratchDatabase, Servers
from tests.support import new_org
from tests.webhook_env import KEYS, PUBLIC_URL, new_integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Serve:
    def __init__(self, env: dict[str, str], workers: int, cwd: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lma_bot.entrypoints.cli", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_ready(self, workers: int, timeout: float = 60) -> list[int]:
        """Every worker answers: a fresh connection per request lands on any of them; wait until the
        parent has ``workers`` children and /healthz has answered 20 times in a row."""
        deadline = time.monotonic() + timeout
        streak = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            while time.monotonic() < deadline and streak < 20:
                assert self.process.poll() is None, self.process.communicate()[0]
                try:
                    async with http.get(self.url("/healthz")) as response:
                        streak = streak + 1 if response.status == 200 else 0
                except aiohttp.ClientError:
                    streak = 0
                    await asyncio.sleep(0.2)
        assert streak >= 20, "serve did not become ready"
        children = _children(self.process.pid)
        assert len(children) == workers
        return children

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def serve_env(tmp_path: Path, test_database: ScratchDatabase, servers: Servers) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LMA_", "SLACK_", "SMTP_")) and k not in ("DATABASE_URL", "REDIS_URL", "PORT")
    }
    env.update(
        DATABASE_URL=test_database.owner_url,
        REDIS_URL=servers.redis_url,
        LMA_ENCRYPTION_KEYS=KEYS,
        LMA_PUBLIC_URL=PUBLIC_URL,
        LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture
def serve(serve_env: dict[str, str], tmp_path: Path) -> Iterator[Serve]:
    server = Serve(serve_env, 2, tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def test_two_workers_store_every_delivery_once_and_stop_together(
    serve: Serve, db: Database, owner_engine: AsyncEngine
) -> None:
    workers = await serve.wait_ready(2)
    org = await new_org(db)
    async with db.uow(org) as session:
        lead = (await create_lead(session, org_id=org, data=LeadCreate(email="w@acme.com"))).id
    hook = await new_integration(db, org, "n8n")
    headers = {
        n8n.SECRET_HEADER: hook.generated_secrets["webhook_secret"],
        "Content-Type": "application/json",
    }
    url = serve.url(hook.webhook_url.removeprefix(PUBLIC_URL))

    async def post(http: aiohttp.ClientSession, i: int) -> int:
        body = json.dumps(
            {"type": "score_event", "event_id": f"w{i}", "lead": {"id": lead}, "event": {"name": "wk"}}
        )
        async with http.post(url, data=body, headers=headers) as response:
            return response.status

    # fresh connections: the kernel spreads them over both workers; every event is sent twice
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        statuses = await asyncio.gather(*(post(http, i % 60) for i in range(120)))
    assert statuses == [200] * 120
    async with owner_engine.connect() as conn:
        deadline = time.monotonic() + 60
        while True:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*), count(DISTINCT provider_event_id), "
                        "count(*) FILTER (WHERE status = 'processed') FROM webhook_events "
                        "WHERE organization_id = :o"
                    ),
                    {"o": org},
                )
            ).one()
            if row[2] == 60 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        activity = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM activity_logs WHERE organization_id = :o AND activity_type = 'event.wk'"
                ),
                {"o": org},
            )
        ).scalar_one()
    assert tuple(row) == (60, 60, 60)
    assert activity == 60
    assert serve.stop() == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


async def test_a_worker_that_dies_stops_the_others(serve: Serve) -> None:
    first, second = await serve.wait_ready(2)
    os.kill(first, signal.SIGKILL)
    assert serve.process.wait(timeout=60) != 0
    assert not Path(f"/proc/{second}").exists() or Path(f"/proc/{second}/stat").read_text().split()[2] == "Z"
