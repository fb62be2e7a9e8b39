"""Browser tests: Debian's Chromium (headless, driven by Playwright with ``executable_path``) against
``lma-bot playground --demo`` on a free port with a throwaway database and its own Redis prefix.

No browser is never a skip: without Chromium these tests fail and say how to install it
(``apt-get install -y chromium``, done by ``scripts/test`` when it runs as root; ``LMA_CHROMIUM`` names
another binary).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.engine import make_url

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.dbadmin import migrate
from tests.conftest import Servers, create_test_database, drop_test_database

READY_LINE = "lma-bot playground: open "
START_TIMEOUT = 60.0


def chromium_path() -> str:
    wanted = os.environ.get("LMA_CHROMIUM")
    for candidate in ([wanted] if wanted else []) + ["/usr/bin/chromium", "chromium", "chromium-browser"]:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    pytest.fail(
        "browser tests need Chromium: `apt-get install -y chromium chromium-driver` (scripts/test does it when "
        "run as root), or set LMA_CHROMIUM=/path/to/chromium",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Playground:
    url: str
    process: subprocess.Popen[str]
    output: list[str]


@pytest.fixture(scope="session")
async def playground(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Playground]:
    database = await create_test_database(servers, prefix="lma_playground")
    await migrate(database.owner_url, DEFAULT_APP_ROLE)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LMA_", "DATABASE_", "REDIS_"))}
    env.update(
        {
            "DATABASE_URL": make_url(database.owner_url).set(drivername="postgresql").render_as_string(False),
            "REDIS_URL": servers.redis_url,
            "LMA_REDIS_PREFIX": f"pg{uuid.uuid4().hex[:8]}:",
            "LMA_DATA_DIR": str(tmp_path_factory.mktemp("playground-data")),
            "LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "lma_bot.entrypoints.cli", "playground", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith(READY_LINE):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.is_set():
        await asyncio.sleep(0.2)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            await drop_test_database(servers, database.name)
            pytest.fail("the playground did not start:\n" + "".join(output[-40:]), pytrace=False)
    try:
        yield Playground(url=f"http://127.0.0.1:{port}/playground", process=process, output=output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        await drop_test_database(servers, database.name)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, playground: Playground, tmp_path: Path) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(playground.url)
    await page.wait_for_selector("#actor option", state="attached")
    try:
        yield page
    finally:
        await page.screenshot(path=str(tmp_path / "screenshot.png"), full_page=True)
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
