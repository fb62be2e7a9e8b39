"""Block Kit builders are pure: fixed view models in, snapshot-compared blocks out."""

from __future__ import annotations

import datetime as dt

from handlers.slack.blocks.card import lead_card
from handlers.slack.blocks.help import help_blocks
from handlers.slack.blocks.home import home_view
from handlers.slack.blocks.lists import lead_page
from handlers.slack.blocks.messages import (
    add_mentioned_offer,
    duplicate_lead,
    mention_dm,
    workspace_not_set_up,
)
from handlers.slack.blocks.modals import add_note_modal, change_status_modal, create_lead_modal
from handlers.slack.ids import ModalContext, PageRequest
from lma_bot.leads.schemas import (
    Cursor,
    LeadCard,
    LeadPage,
    LeadQuery,
    LeadSummary,
    ListFilter,
    NoteView,
    OwnerView,
)
from tests.snapshot import assert_snapshot

T0 = dt.datetime(2026, 11, 20, 14, 2, tzinfo=dt.UTC)


def _card(**changes: object) -> LeadCard:
    card = LeadCard(
        organization_id=1,
        id=42,
        name="Ann Lee",
        email="ann@acme.com",
        company="Acme <Inc> & Co",
        phone="+1 555 0100",
        job_title="VP Sales",
        source="event",
        status="qualified",
        score=57,
        lead_temperature="warm",
        tags=["q4", "inbound"],
        owner=OwnerView(id=7, name="Rita Rep", slack_user_id="U0RITA"),
        notes=[
            NoteView(
                id=3,
                author_id=7,
                author_name="Rita Rep",
                author_slack_id="U0RITA",
                content="Budget approved, <@U0MIA> please join the demo",
                is_private=False,
                note_type="general",
                created_at=T0,
            ),
            NoteView(
                id=2,
                author_id=8,
                author_name="Mia Manager",
                author_slack_id="U0MIA",
                content="Competitor quoted 20% less",
                is_private=True,
                note_type="general",
                created_at=T0 - dt.timedelta(days=1),
            ),
        ],
        next_reminder_at=T0 + dt.timedelta(days=2),
        created_at=T0 - dt.timedelta(days=10),
        updated_at=T0,
    )
    return card.model_copy(update=changes)


def test_lead_card() -> None:
    card = _card()
    blocks = lead_card(card, card.notes)
    assert_snapshot("lead_card", blocks)
    # user text is escaped, buttons carry the lead id
    assert "Acme &lt;Inc&gt; &amp; Co" in str(blocks)
    actions = blocks[-1]["elements"]
    assert [a["action_id"] for a in actions] == [
        "lead-add-note",
        "lead-change-status",
        "lead-reassign",
        "lead-remind",
        "lead-score-details",
    ]
    assert {a["value"] for a in actions} == {'{"lead_id":42}'}


def test_lead_card_unassigned_without_notes_or_reminder() -> None:
    card = _card(
        owner=None, notes=[], next_reminder_at=None, tags=[], company=None, phone=None, job_title=None
    )
    assert_snapshot("lead_card_bare", lead_card(card, []))


def _page(items: int, *, has_prev: bool, has_next: bool, query: LeadQuery) -> LeadPage:
    summaries = [
        LeadSummary(
            id=100 - i,
            name=f"Lead {100 - i}",
            email=f"l{i}@x.io",
            company="X" if i % 2 else None,
            status="new",
            score=i * 10,
            lead_temperature="hot" if i == 0 else "cold",
            owner_slack_id="U0RITA" if i % 2 else None,
            owner_name="Rita" if i % 2 else None,
            created_at=T0 - dt.timedelta(hours=i),
        )
        for i in range(items)
    ]
    first = Cursor(created_at=summaries[0].created_at, id=summaries[0].id) if summaries else None
    last = Cursor(created_at=summaries[-1].created_at, id=summaries[-1].id) if summaries else None
    return LeadPage(
        query=query, items=summaries, first=first, last=last, has_next=has_next, has_prev=has_prev
    )


def test_lead_page_with_both_buttons() -> None:
    query = LeadQuery(filter=ListFilter.STATUS, value="new")
    blocks = lead_page(_page(3, has_prev=True, has_next=True, query=query))
    assert_snapshot("lead_page_middle", blocks)
    buttons = blocks[-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Previous", "Next"]
    assert PageRequest.model_validate_json(buttons[1]["value"]).after == Cursor(
        created_at=T0 - dt.timedelta(hours=2), id=98
    )


def test_lead_page_empty_states() -> None:
    assert_snapshot(
        "lead_page_empty_mine",
        lead_page(_page(0, has_prev=False, has_next=False, query=LeadQuery(filter=ListFilter.MINE))),
    )
    assert_snapshot(
        "lead_page_empty_find",
        lead_page(_page(0, has_prev=False, has_next=False, query=LeadQuery(text="zzz"))),
    )


def test_help_is_role_aware() -> None:
    rep, manager = help_blocks(role="rep"), help_blocks(role="manager")
    assert_snapshot("help_rep", rep)
    assert "private notes" in str(manager[-1])
    assert manager != rep


def test_modals() -> None:
    assert_snapshot("modal_create_lead", create_lead_modal(ModalContext(channel_id="C0GENERAL")))
    assert_snapshot(
        "modal_add_note", add_note_modal(ModalContext(channel_id="C1", lead_id=42), lead_name="Ann Lee")
    )
    assert_snapshot(
        "modal_change_status",
        change_status_modal(
            ModalContext(lead_id=42), lead_name="Ann Lee", current="qualified", allowed=("proposal", "lost")
        ),
    )
    closed = change_status_modal(ModalContext(lead_id=42), lead_name="Ann Lee", current="won", allowed=())
    assert "callback_id" not in closed
    assert "closed" in str(closed)


def test_messages() -> None:
    assert_snapshot(
        "dm_mention",
        mention_dm(
            author_slack_id="U0RITA",
            author_name="Rita",
            lead_id=42,
            lead_name="Ann Lee",
            content="hi <@U0MIA>",
            private=True,
        ),
    )
    assert_snapshot("offer_add_users", add_mentioned_offer(["U0NEW", "U0NEW2"]))
    assert_snapshot("duplicate_lead", duplicate_lead(42, "Ann Lee", "ann@acme.com"))
    assert workspace_not_set_up("T0ACME", "acme").endswith(
        '`lma-bot orgs create --name "acme" --slack-team-id T0ACME`'
    )


def test_home_view() -> None:
    page = _page(2, has_prev=False, has_next=False, query=LeadQuery())
    assert_snapshot("home_view", home_view(name="Rita Rep", leads=page.items))
    assert_snapshot("home_view_empty", home_view(name="Rita Rep", leads=[]))


def test_reminder_dm_plain_dicts_are_valid_block_kit() -> None:
    import datetime as dt

    from slack_sdk.models.blocks import Block as SdkBlock

    from handlers.slack.blocks.reminders import reminder_dm

    blocks = reminder_dm(
        reminder_id=7,
        lead_id=42,
        lead_name="Jo <Lee>",
        message="ask about *budget*",
        due_at=dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC),
        set_by_slack_id="U0MGR",
        set_by_name="Mia",
        for_self=False,
    )
    for block in blocks:
        parsed = SdkBlock.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block
    assert "Jo &lt;Lee&gt;" in blocks[0]["text"]["text"]
