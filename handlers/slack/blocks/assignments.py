"""Block Kit for reassignments: the approval request (with Approve / Reject, then a static status line),
the thread notes, the requester's confirmation, the DMs, the Reassign form and `/lead admin` settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from handlers.slack.blocks.common import TEMPERATURE_EMOJI, dump, esc, slack_date, user_ref
from handlers.slack.blocks.messages import lead_line, open_button
from handlers.slack.ids import Action, AssignmentRef, ModalContext
from handlers.slack.ids import Block as BlockId
from handlers.slack.ids import View as ViewId
from lma_bot.assignments.schemas import Person, RequestView, SettingsOverview

OUTCOME_EMOJI = {
    "approved": ":white_check_mark:",
    "rejected": ":no_entry:",
    "expired": ":hourglass:",
    "cancelled": ":wastebasket:",
    "completed": ":arrow_right:",
    "pending": ":hourglass_flowing_sand:",
}
STRATEGY_TEXT = {
    "none": "none (leads stay unassigned until someone takes them)",
    "round_robin": "round robin",
    "least_busy": "least busy (fewest open leads)",
}


def who(person: Person | None, *, nobody: str = "_nobody_") -> str:
    return user_ref(person.slack_user_id, person.name) if person else nobody


def _summary(view: RequestView) -> list[Block]:
    emoji = TEMPERATURE_EMOJI.get(view.lead_temperature, "")
    company = f" · {esc(view.lead_company)}" if view.lead_company else ""
    text = (
        f":twisted_rightwards_arrows: *Reassignment request #{view.id}* for "
        f"{lead_line(view.lead_id, view.lead_name)}{company}\n"
        f"{view.lead_status} · score {view.lead_score} {emoji}\n"
        f"*From* {who(view.from_user, nobody='_unassigned_')} *to* {who(view.to_user)}\n"
        f"*Requested by* {who(view.requested_by)}"
    )
    if view.reason:
        text += f"\n*Reason:* {esc(view.reason)}"
    return [
        SectionBlock(text=MarkdownTextObject(text=text), accessory=open_button(view.lead_id, "Open lead"))
    ]


def decision_line(view: RequestView) -> str:
    """The static line that replaces the buttons: "Approved by @m at 14:02"."""
    emoji = OUTCOME_EMOJI.get(view.status, "")
    at = (
        f" at {slack_date(view.decided_at, '{time}')} {slack_date(view.decided_at, '{date_short}')}"
        if view.decided_at
        else ""
    )
    if view.status == "expired":
        return f"{emoji} Expired without a decision{at}"
    if view.status == "cancelled":
        return f"{emoji} Cancelled by {who(view.decided_by)}{at}" + (
            f" ({esc(view.decision_note)})"
            if view.decision_note and "superseded" in view.decision_note
            else ""
        )
    return f"{emoji} {view.status.capitalize()} by {who(view.decided_by)}{at}"


def approval_request(view: RequestView) -> list[dict[str, Any]]:
    """The message in the approvals channel (or a manager's DM) while the request is pending."""
    ref = AssignmentRef(assignment_id=view.id).dumps()
    blocks = _summary(view)
    if view.expires_at is not None:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Expires {slack_date(view.expires_at)} · discuss in the thread, then decide"
                    )
                ]
            )
        )
    blocks.append(
        ActionsBlock(
            block_id=f"assignment-{view.id}",
            elements=[
                ButtonElement(
                    text="Approve", action_id=Action.LEAD_REASSIGN_APPROVE, value=ref, style="primary"
                ),
                ButtonElement(
                    text="Reject",
                    action_id=Action.LEAD_REASSIGN_REJECT,
                    value=ref,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Reject this request?",
                        text=f"{view.lead_name} stays with its current owner.",
                        confirm="Reject",
                        deny="Back",
                    ),
                ),
            ],
        )
    )
    return dump(blocks)


def approval_settled(view: RequestView) -> list[dict[str, Any]]:
    """The same message once decided: the buttons are replaced by a static status line."""
    blocks = _summary(view)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=decision_line(view))]))
    return dump(blocks)


def approval_text(view: RequestView) -> str:
    return f"Reassignment request #{view.id}: #{view.lead_id} {view.lead_name}"


def thread_note(view: RequestView) -> str:
    """Posted in the request's thread when it is settled."""
    line = decision_line(view)
    if view.status == "approved":
        return f"{line}. {who(view.to_user)} now owns {lead_line(view.lead_id, view.lead_name)}."
    if view.status == "expired":
        return f"{line}; {who(view.requested_by)} was told. A new request can be made with `/lead assign`."
    return f"{line}."


def request_sent(view: RequestView, *, where: str) -> list[dict[str, Any]]:
    """The requester's confirmation, with Cancel."""
    text = (
        f":hourglass_flowing_sand: Request #{view.id} to give {lead_line(view.lead_id, view.lead_name)} to "
        f"{who(view.to_user)} is waiting for a manager ({where})."
    )
    if view.expires_at is not None:
        text += f" It expires {slack_date(view.expires_at)}."
    return dump(
        [
            SectionBlock(text=MarkdownTextObject(text=text)),
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Cancel request",
                        action_id=Action.LEAD_REASSIGN_CANCEL,
                        value=AssignmentRef(assignment_id=view.id).dumps(),
                    )
                ]
            ),
        ]
    )


def duplicate_pending(view: RequestView) -> list[dict[str, Any]]:
    text = (
        f":information_source: {lead_line(view.lead_id, view.lead_name)} already has a pending request "
        f"#{view.id} ({who(view.requested_by)} asked for {who(view.to_user)}, {slack_date(view.requested_at)}). "
        "Wait for its decision; whoever asked can cancel it."
    )
    return dump([SectionBlock(text=MarkdownTextObject(text=text), accessory=open_button(view.lead_id))])


def reassigned_text(view: RequestView) -> str:
    return (
        f":arrow_right: {lead_line(view.lead_id, view.lead_name)} now belongs to {who(view.to_user)} "
        f"(was {who(view.from_user, nobody='unassigned')})."
    )


def settled_dm(view: RequestView, *, recipient_id: int) -> list[dict[str, Any]]:
    """The DM to the requester, the old owner and the new owner after a decision (or a direct reassign)."""
    lead = lead_line(view.lead_id, view.lead_name)
    if view.status in ("approved", "completed"):
        if view.to_user and recipient_id == view.to_user.id:
            text = f":inbox_tray: You now own {lead} (from {who(view.from_user, nobody='unassigned')}), assigned by {who(view.decided_by)}."
        elif view.from_user and recipient_id == view.from_user.id:
            text = f":outbox_tray: {lead} was reassigned to {who(view.to_user)} by {who(view.decided_by)}."
        else:
            text = f":white_check_mark: Your request #{view.id} was approved: {who(view.to_user)} now owns {lead}."
    elif view.status == "rejected":
        text = f":no_entry: Your request #{view.id} to give {lead} to {who(view.to_user)} was rejected by {who(view.decided_by)}."
    elif view.status == "expired":
        text = f":hourglass: Your request #{view.id} to give {lead} to {who(view.to_user)} expired without a decision."
    else:
        text = f"{decision_line(view)}: request #{view.id} for {lead}."
    if view.reason:
        text += f"\n>{esc(view.reason)}"
    return dump([SectionBlock(text=MarkdownTextObject(text=text), accessory=open_button(view.lead_id))])


def nobody_eligible_dm(*, unassigned: int, since: dt.datetime) -> list[dict[str, Any]]:
    text = (
        f":warning: New leads are arriving but nobody is eligible for automatic assignment since "
        f"{slack_date(since)} (every rep is away, inactive or at capacity). *{unassigned}* lead"
        f"{'s are' if unassigned != 1 else ' is'} unassigned: `/lead list unassigned`. "
        "Adjust with `/lead admin capacity` or `/lead admin away`. You'll be told again only after "
        "assignments resume and stall again."
    )
    return dump([SectionBlock(text=MarkdownTextObject(text=text))])


def reassign_modal(
    context: ModalContext, *, lead_name: str, owner: str | None, needs_approval: bool
) -> dict[str, Any]:
    note = (
        "A manager approves your request in the approvals channel."
        if needs_approval
        else "As a manager, the lead is reassigned at once."
    )
    view = View(
        type="modal",
        callback_id=ViewId.REASSIGN,
        title="Reassign lead",
        submit="Request" if needs_approval else "Reassign",
        close="Cancel",
        private_metadata=context.dumps(),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*#{context.lead_id} {esc(lead_name)}* is owned by {owner or '_nobody_'}."
                )
            ),
            InputBlock(
                block_id=BlockId.ASSIGNEE,
                label="New owner",
                element=UserSelectElement(action_id=BlockId.ASSIGNEE, placeholder="Choose a teammate"),
            ),
            InputBlock(
                block_id=BlockId.REASON,
                label="Reason",
                optional=True,
                element=PlainTextInputElement(
                    action_id=BlockId.REASON, placeholder="optional", max_length=500
                ),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=note)]),
        ],
    )
    return view.to_dict()


def admin_settings(overview: SettingsOverview) -> list[dict[str, Any]]:
    s = overview.settings
    channel = f"<#{s.approvals_channel}>" if s.approvals_channel else "_not set: managers get a DM_"
    capacity = str(s.capacity) if s.capacity else "no limit"
    blocks: list[Block] = [
        HeaderBlock(text="Assignment settings"),
        SectionBlock(
            text=MarkdownTextObject(
                text=(
                    f"*Approvals channel:* {channel}\n"
                    f"*Automatic assignment:* {STRATEGY_TEXT.get(s.strategy, s.strategy)}\n"
                    f"*Capacity per rep:* {capacity} open leads\n"
                    f"*Requests expire after:* {s.expiry_hours} h"
                )
            )
        ),
        DividerBlock(),
    ]
    lines = []
    for m in overview.members:
        flags = []
        if not m.is_active:
            flags.append("inactive")
        if m.away:
            flags.append(":palm_tree: away")
        if m.capacity:
            flags.append(f"capacity {m.capacity}")
        extra = f" · {', '.join(flags)}" if flags else ""
        lines.append(f"{user_ref(m.slack_user_id, m.name)} ({m.role}) · {m.open_leads} open{extra}")
    if lines:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Team*\n" + "\n".join(lines[:40]))))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="`/lead admin approvals-channel #channel|off` · `/lead admin assignment none|round_robin|least_busy` · "
                    "`/lead admin capacity <n|off> [@user]` · `/lead admin away @user on|off` · `/lead admin expiry <hours>`"
                )
            ]
        )
    )
    return dump(blocks)
