from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from handlers.slack.blocks.common import esc
from handlers.slack.ids import Block, ModalContext
from handlers.slack.ids import View as ViewId


def _text_input(
    block: Block, label: str, *, placeholder: str, optional: bool = True, multiline: bool = False
) -> InputBlock:
    return InputBlock(
        block_id=block,
        label=label,
        optional=optional,
        element=PlainTextInputElement(action_id=block, placeholder=placeholder, multiline=multiline),
    )


def create_lead_modal(context: ModalContext) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=ViewId.CREATE_LEAD,
        title="New lead",
        submit="Create",
        close="Cancel",
        private_metadata=context.dumps(),
        blocks=[
            _text_input(Block.EMAIL, "Email", placeholder="ann@acme.com"),
            _text_input(Block.FIRST_NAME, "First name", placeholder="Ann"),
            _text_input(Block.LAST_NAME, "Last name", placeholder="Lee"),
            _text_input(Block.COMPANY, "Company", placeholder="Acme Inc"),
            _text_input(Block.SOURCE, "Source", placeholder="website, referral, event..."),
            _text_input(Block.TAGS, "Tags", placeholder="comma separated, e.g. inbound,q4"),
        ],
    )
    return view.to_dict()


def add_note_modal(context: ModalContext, *, lead_name: str) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=ViewId.ADD_NOTE,
        title="Add note",
        submit="Save",
        close="Cancel",
        private_metadata=context.dumps(),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f"Note on *#{context.lead_id} {esc(lead_name)}*")),
            _text_input(
                Block.NOTE,
                "Note",
                placeholder="What happened? Mention teammates with @",
                optional=False,
                multiline=True,
            ),
            InputBlock(
                block_id=Block.PRIVATE,
                label="Visibility",
                optional=True,
                element=CheckboxesElement(
                    action_id=Block.PRIVATE,
                    options=[Option(value="private", text="Private: only me, the owner and managers")],
                ),
            ),
        ],
    )
    return view.to_dict()


def change_status_modal(
    context: ModalContext, *, lead_name: str, current: str, allowed: tuple[str, ...]
) -> dict[str, Any]:
    if not allowed:
        return info_modal(
            "Change status", f"#{context.lead_id} {esc(lead_name)} is *{current}*: it is closed."
        )
    view = View(
        type="modal",
        callback_id=ViewId.CHANGE_STATUS,
        title="Change status",
        submit="Change",
        close="Cancel",
        private_metadata=context.dumps(),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(text=f"*#{context.lead_id} {esc(lead_name)}* is *{current}*.")
            ),
            InputBlock(
                block_id=Block.STATUS,
                label="New status",
                element=StaticSelectElement(
                    action_id=Block.STATUS,
                    placeholder="Choose",
                    options=[Option(value=s, text=s) for s in allowed],
                ),
            ),
            _text_input(Block.REASON, "Reason", placeholder="optional"),
        ],
    )
    return view.to_dict()


def info_modal(title: str, text: str) -> dict[str, Any]:
    view = View(
        type="modal",
        title=title[:24],
        close="OK",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    )
    return view.to_dict()
