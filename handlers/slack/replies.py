"""What the Slack listeners share: how an answer only its asker sees is sent, and the plain ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

EPHEMERAL: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False}
"""``respond(..., **EPHEMERAL)``: a new message only the user who acted sees, the original left as it is."""


async def just_ack(ack: AsyncAck) -> None:
    """The ack of a listener whose work is all lazy (it answers through ``respond`` or the Web API)."""
    await ack()
