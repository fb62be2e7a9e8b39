"""Direct messages from the bot, after the unit of work has committed. A failed DM is logged, not raised:
the change it reports is already durable."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


async def send_dm(
    client: AsyncWebClient, slack_user_id: str, *, text: str, blocks: list[dict[str, Any]]
) -> bool:
    try:
        opened = await client.conversations_open(users=slack_user_id)
        channel = opened["channel"]["id"]
        await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("slack.dm.failed user=%s error=%s", slack_user_id, exc.response.get("error"))
        return False
    return True
