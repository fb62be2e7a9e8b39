from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

TEMPERATURE_EMOJI = {"hot": ":fire:", "warm": ":sunny:", "cold": ":snowflake:"}


def esc(text: str | None) -> str:
    """Escape user-provided text for mrkdwn (&, <, >)."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(when: dt.datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack renders in each viewer's own time zone, with a UTC fallback."""
    epoch = int(when.timestamp())
    fallback = when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{fmt}|{fallback}>"


def user_ref(slack_user_id: str | None, name: str | None) -> str:
    if slack_user_id:
        return f"<@{slack_user_id}>"
    return esc(name) if name else "_nobody_"


def dump(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def text_blocks(text: str, *, context: str | None = None) -> list[dict[str, Any]]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=text))]
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]))
    return dump(blocks)
