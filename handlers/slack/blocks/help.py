from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import dump
from handlers.slack.grammar import usage_lines

EXAMPLES = (
    "/lead create ann@acme.com Ann Lee company=Acme tags=inbound,q4",
    "/lead show 42",
    "/lead list status:qualified",
    "/lead find acme",
    "/lead status 42 contacted left a voicemail",
    "/lead note 42 Call went well, <@U0MANAGER> can you join the demo?",
)


def help_blocks(*, role: str, problem: str | None = None) -> list[dict[str, Any]]:
    """The grammar, shown for `/lead help` and after a usage mistake (``problem``)."""
    blocks: list[Block] = []
    if problem:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f":warning: {problem}")))
    blocks.append(HeaderBlock(text="/lead: your leads from Slack"))
    lines = "\n".join(f"`{line}`" for line in usage_lines(role))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=lines)))
    blocks.append(DividerBlock())
    blocks.append(
        SectionBlock(text=MarkdownTextObject(text="*Examples*\n" + "\n".join(f"`{e}`" for e in EXAMPLES)))
    )
    footer = "A lead is its number or its email. Private notes (`--private`) are seen by you, the owner and managers."
    if role in ("manager", "admin"):
        footer += " As a " + role + " you also see everyone's private notes and run workflows by hand."
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return dump(blocks)
