"""``lma-bot keys rotate``: re-encrypt every stored secret under the newest ``LMA_ENCRYPTION_KEYS`` key.

Put the new key first in ``LMA_ENCRYPTION_KEYS`` (keep the old ones after it), run this, then drop the old
keys. Each organization is one transaction; running it again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from lma_bot.models import Integration, SlackInstallation


@dataclass
class RotationReport:
    organizations: int = 0
    integrations: int = 0
    slack_installations: int = 0


async def rotate_all(database: Database, box: SecretBox) -> RotationReport:
    report = RotationReport()
    for org_id in await database.organization_ids(include_inactive=True):
        report.organizations += 1
        async with database.uow(org_id) as session:
            integrations = await session.scalars(
                select(Integration).where(
                    Integration.organization_id == org_id, Integration.encrypted_secrets.is_not(None)
                )
            )
            for integration in integrations:
                assert integration.encrypted_secrets is not None
                integration.encrypted_secrets = box.rotate(integration.encrypted_secrets)
                report.integrations += 1
            installations = await session.scalars(
                select(SlackInstallation).where(SlackInstallation.organization_id == org_id)
            )
            for installation in installations:
                installation.bot_token_encrypted = box.rotate(installation.bot_token_encrypted)
                report.slack_installations += 1
    return report
