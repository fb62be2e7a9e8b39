"""App Home and reassignment Block Kit snapshots (pure builders, fixed data)."""

from __future__ import annotations

import datetime as dt

from handlers.slack.blocks.assignments import admin_settings, approval_request, approval_settled, request_sent
from handlers.slack.blocks.home import HomeReminder, home_view
from lma_bot.assignments.schemas import (
    AssignmentSettings,
    MemberSettings,
    Person,
    RequestView,
    SettingsOverview,
    Strategy,
)
from lma_bot.leads.schemas import LeadSummary
from tests.snapshot import assert_snapshot

AT = dt.datetime(2026, 11, 25, 14, 2, tzinfo=dt.UTC)
RITA = Person(id=1, name="Rita Rep", slack_user_id="U0REP")
RAY = Person(id=2, name="Ray Rep", slack_user_id="U0REP2")
MIA = Person(id=3, name="Mia Manager", slack_user_id="U0MGR")


def _leads() -> list[LeadSummary]:
    return [
        LeadSummary(
            id=7,
            name="Hana Hot",
            email="hana@big.io",
            company="Big",
            status="qualified",
            score=91,
            lead_temperature="hot",
            owner_slack_id=None,
            owner_name=None,
            created_at=AT,
        ),
        LeadSummary(
            id=3,
            name="Carl Cold",
            email=None,
            company=None,
            status="new",
            score=4,
            lead_temperature="cold",
            owner_slack_id=None,
            owner_name=None,
            created_at=AT,
        ),
    ]


def _request(status: str = "pending", decided_by: Person | None = None) -> RequestView:
    return RequestView(
        id=12,
        status=status,
        lead_id=7,
        lead_name="Hana Hot",
        lead_company="Big",
        lead_status="qualified",
        lead_score=91,
        lead_temperature="hot",
        from_user=RITA,
        to_user=RAY,
        requested_by=RITA,
        decided_by=decided_by,
        reason="going on vacation",
        decision_note=None,
        requested_at=AT,
        decided_at=AT + dt.timedelta(hours=1) if decided_by else None,
        expires_at=AT + dt.timedelta(hours=24),
        approval_messages=[],
    )


def test_home_view_for_a_rep() -> None:
    reminders = [
        HomeReminder(reminder_id=5, lead_id=7, lead_name="Hana Hot", message="send the proposal", due_at=AT)
    ]
    assert_snapshot("home_rep", home_view(name="Rita Rep", leads=_leads(), reminders=reminders))


def test_home_view_for_a_manager() -> None:
    view = home_view(name="Mia Manager", leads=[], reminders=[], approvals=[_request()])
    assert_snapshot("home_manager", view)
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "lead-reassign-approve",
        "lead-reassign-reject",
    ]


def test_approval_messages() -> None:
    assert_snapshot("assignment_request", approval_request(_request()))
    settled = approval_settled(_request("approved", MIA))
    assert_snapshot("assignment_approved", settled)
    assert all(b["type"] != "actions" for b in settled)
    assert_snapshot("assignment_request_sent", request_sent(_request(), where="in <#C0APPROVE>"))


def test_admin_settings() -> None:
    overview = SettingsOverview(
        settings=AssignmentSettings(
            strategy=Strategy.ROUND_ROBIN, capacity=20, approvals_channel="C0APPROVE"
        ),
        members=[
            MemberSettings(
                id=1,
                name="Rita Rep",
                slack_user_id="U0REP",
                role="rep",
                is_active=True,
                away=True,
                capacity=None,
                open_leads=4,
            ),
            MemberSettings(
                id=2,
                name="Ray Rep",
                slack_user_id="U0REP2",
                role="rep",
                is_active=True,
                away=False,
                capacity=10,
                open_leads=9,
            ),
        ],
    )
    assert_snapshot("admin_assignment_settings", admin_settings(overview))
