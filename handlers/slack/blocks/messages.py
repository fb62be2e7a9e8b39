from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from handlers.slack.blocks.common import dump, esc, user_ref
from handlers.slack.ids import Action, LeadRef, MemberRef


def lead_line(lead_id: int, name: str) -> str:
    return f"*#{lead_id} {esc(name)}*"


def open_button(lead_id: int, text: str = "Open lead") -> ButtonElement:
    return ButtonElement(text=text, action_id=Action.LEAD_OPEN, value=LeadRef(lead_id=lead_id).dumps())


def lead_created(lead_id: int, name: str) -> list[dict[str, Any]]:
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(text=f":white_check_mark: Created {lead_line(lead_id, name)}."),
                accessory=open_button(lead_id),
            )
        ]
    )


def duplicate_lead(lead_id: int, name: str, email: str) -> list[dict[str, Any]]:
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f":information_source: {esc(email)} is already {lead_line(lead_id, name)}. Nothing was created."
                ),
                accessory=open_button(lead_id),
            )
        ]
    )


def mention_dm(
    *,
    author_slack_id: str | None,
    author_name: str,
    lead_id: int,
    lead_name: str,
    content: str,
    private: bool,
) -> list[dict[str, Any]]:
    lock = ":lock: private note" if private else "note"
    author = user_ref(author_slack_id, author_name)
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"{author} mentioned you in a {lock} on {lead_line(lead_id, lead_name)}:\n>{content[:2500]}"
                )
            ),
            ActionsBlock(elements=[open_button(lead_id)]),
        ]
    )


def add_mentioned_offer(slack_user_ids: list[str]) -> list[dict[str, Any]]:
    """After a note mentions people who are not users: one line each with an "Add as user" button."""
    blocks = [
        SectionBlock(
            text=MarkdownTextObject(
                text="Some people you mentioned are not lma-bot users yet, so they were not notified:"
            )
        )
    ]
    for slack_user_id in slack_user_ids[:10]:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"<@{slack_user_id}>"),
                accessory=ButtonElement(
                    text="Add as user",
                    action_id=f"{Action.USER_ADD_MENTIONED}-{slack_user_id}",
                    value=MemberRef(slack_user_id=slack_user_id).dumps(),
                ),
            )
        )
    return dump(blocks)


def workspace_not_set_up(team_id: str, team_domain: str | None) -> str:
    name = team_domain or "My team"
    return (
        f":wave: This Slack workspace (`{team_id}`) is not set up for lma-bot yet. "
        f"An lma-bot admin can set it up with:\n"
        f'`lma-bot orgs create --name "{name}" --slack-team-id {team_id}`'
    )
