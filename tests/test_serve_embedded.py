"""The README's run path, end to end: ``lma-bot serve`` with no DATABASE_URL/REDIS_URL starts the embedded
PostgreSQL and Redis, answers /healthz and /readyz, and an organization created with the CLI survives a
stop (SIGTERM) and a fresh start on the same data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LMA_", "SLACK_", "SMTP_")) and k not in ("DATABASE_URL", "REDIS_URL", "PORT")
    }
    env["LMA_DATA_DIR"] = str(data_dir)
    env["LOG_LEVEL"] = "WARNING"
    return env


def _cli(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lma_bot.entrypoints.cli", *argv],
        env=_env(data_dir), cwd=data_dir, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


class Serve:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lma_bot.entrypoints.cli", "serve", "--port", str(self.port)],
            env=_env(data_dir), cwd=data_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 90) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[0]
            try:
                status, body = _get(self.url("/readyz"))
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200:
                return body
            time.sleep(0.2)
        raise AssertionError("serve did not become ready")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def test_serve_on_the_embedded_default_keeps_data_across_restarts(data_dir: Path) -> None:
    first = Serve(data_dir)
    try:
        assert first.wait_ready() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}
        assert _get(first.url("/healthz")) == (200, {"status": "ok"})
        created = _cli(data_dir, "orgs", "create", "--name", "Persistent", "--json")
        assert created.returncode == 0, created.stderr
        org_id = json.loads(created.stdout)["id"]
    finally:
        assert first.stop() == 0
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert (data_dir / "encryption.key").stat().st_mode & 0o777 == 0o600

    second = Serve(data_dir)
    try:
        second.wait_ready()
        added = _cli(data_dir, "users", "add", "--org", str(org_id), "--email", "a@example.com", "--name", "A",
                     "--role", "admin", "--json")  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["organization_id"] == org_id
    finally:
        assert second.stop() == 0
    # The last holder is gone: the embedded servers stopped with it.
    assert not (data_dir / "redis" / "redis.pid").exists()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
