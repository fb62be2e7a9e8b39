"""Scoring in Slack over loopback: `/lead score` explains the score, managers adjust and lock it, admins add
rules through the form (errors per field with the JSON path) and the organization is rescored, the card's
Score details button, and one hot-lead alert per crossing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from handlers.slack.blocks.scoring import sparkline
from handlers.slack.ids import LeadRef
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Lead, LeadScoreHistory, LeadScoringRule, Organization
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_requests import block_action, plain_text_value, select_value, view_submission
from tests.slack_env import SlackEnv, slack_env


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


async def _lead(env: SlackEnv, db: Database, company: str | None = "Acme") -> int:
    async with db.uow(env.org_id) as session:
        lead = await create_lead(
            session,
            org_id=env.org_id,
            actor_id=env.users["U0REP"],
            data=LeadCreate(
                email="jo@prospect.test", first_name="Jo", company=company, assigned_to_id=env.users["U0REP"]
            ),
        )
        return lead.id


async def _score(db: Database, org: int, lead_id: int) -> tuple[int, str]:
    async with db.uow(org) as session:
        lead = await session.get(Lead, (org, lead_id))
        assert lead is not None
        return lead.score, lead.lead_temperature


def _rule_values(
    *, name: str = "Has a company", points: str = "15", criteria: str | None = None
) -> dict[str, object]:
    crit = (
        criteria if criteria is not None else json.dumps({"field": "company", "op": "exists", "value": True})
    )
    return {
        "rule_name": {"rule_name": plain_text_value(name)},
        "rule_points": {"rule_points": plain_text_value(points)},
        "rule_policy": {"rule_policy": select_value("once_per_lead")},
        "rule_limit": {"rule_limit": plain_text_value(None)},
        "rule_priority": {"rule_priority": plain_text_value("1")},
        "rule_criteria": {"rule_criteria": plain_text_value(crit)},
    }


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([3, 3]) == "▄▄"
    assert len(sparkline(list(range(100)))) == 24
    assert sparkline([]) == ""


async def test_admin_adds_a_rule_with_the_form_errors_per_field_and_leads_are_rescored(
    env: SlackEnv, db: Database
) -> None:
    lead_id = await _lead(env, db)
    assert (await _score(db, env.org_id, lead_id))[0] == 0
    status, body = await env.command("rules add", user="U0ADM")
    assert (status, body) == (200, "")
    [opened] = await env.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "scoring-rule"

    bad_json = view_submission(
        "scoring-rule",
        _rule_values(criteria="{oops"),
        private_metadata=view["private_metadata"],
        user_id="U0ADM",
        view_id="V1",
    )
    status, body = await env.client.view(bad_json)
    errors = json.loads(body)["errors"]
    assert list(errors) == ["rule_criteria"]
    assert errors["rule_criteria"].startswith("not valid JSON")

    bad_op = _rule_values(
        criteria=json.dumps(
            {
                "all": [
                    {"field": "company", "op": "exists", "value": True},
                    {"field": "source", "op": "eqq", "value": "x"},
                ]
            }
        )
    )
    status, body = await env.client.view(
        view_submission(
            "scoring-rule", bad_op, private_metadata=view["private_metadata"], user_id="U0ADM", view_id="V2"
        )
    )
    assert json.loads(body)["errors"]["rule_criteria"].startswith(
        'criteria.all[1].op: unknown operator "eqq"'
    )

    status, body = await env.client.view(
        view_submission(
            "scoring-rule",
            _rule_values(points="ten"),
            private_metadata=view["private_metadata"],
            user_id="U0ADM",
            view_id="V3",
        )
    )
    assert json.loads(body)["errors"] == {"rule_points": "points must be a whole number"}
    async with db.uow(env.org_id) as session:
        assert (await session.execute(select(LeadScoringRule))).all() == []

    status, body = await env.client.view(
        view_submission(
            "scoring-rule",
            _rule_values(),
            private_metadata=view["private_metadata"],
            user_id="U0ADM",
            view_id="V4",
        )
    )
    assert (status, body) == (200, "")
    posts = await env.fake.wait_for("chat.postMessage", 2, timeout=10)  # saved, then rescored
    texts = [str(p.params["text"]) for p in posts]
    assert any("saved; rescoring" in t for t in texts)
    assert any("Rescored the organization's leads: 1 score changed" in t for t in texts)
    assert (await _score(db, env.org_id, lead_id))[0] == 15


async def test_reps_and_managers_cannot_open_the_rule_form(env: SlackEnv) -> None:
    for user in ("U0REP", "U0MGR"):
        await env.command("rules add", user=user)
    for n in (1, 2):
        assert "only admins can change scoring rules" in str((await env.reply(n))["text"]).lower()
    assert env.fake.calls_to("views.open") == []


async def test_score_explains_rules_manual_changes_and_history(env: SlackEnv, db: Database) -> None:
    async with db.uow(env.org_id) as session:
        session.add(
            LeadScoringRule(
                organization_id=env.org_id,
                name="Has a company",
                rule_type="firmographic",
                criteria={"field": "company", "op": "exists", "value": True},
                score_points=15,
            )
        )
    lead_id = await _lead(env, db)
    assert (await _score(db, env.org_id, lead_id))[0] == 15  # scored at creation
    await env.command(f"score {lead_id} adjust +10 met the CEO", user="U0MGR")
    assert "→ *25*" in str((await env.reply())["text"])
    await env.command(f"score {lead_id}")
    shown = json.dumps(await env.reply(2))
    assert "*25* points" in shown
    assert "+15  Has a company" in shown
    assert "+10  manual adjustments" in shown
    assert "met the CEO" in shown
    assert "Adjust:" not in shown  # a rep sees no manager hints
    async with db.uow(env.org_id) as session:
        history = (await session.execute(select(LeadScoreHistory.score_change, LeadScoreHistory.kind))).all()
    assert sorted(history) == [(10, "manual"), (15, "rule")]


async def test_a_rep_cannot_adjust_and_bad_amounts_show_the_usage(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    await env.command(f"score {lead_id} adjust +10 please")
    assert "only managers or admins can adjust scores" in str((await env.reply())["text"]).lower()
    _, body = await env.command(f"score {lead_id} adjust ten because")
    assert "say how much" in body
    _, body = await env.command(f"score {lead_id} adjust +10")
    assert "a manual adjustment needs a reason" in body
    assert (await _score(db, env.org_id, lead_id))[0] == 0


async def test_lock_keeps_rules_off_until_unlocked(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    await env.command(f"score {lead_id} lock", user="U0MGR")
    assert ":lock:" in str((await env.reply())["text"])
    async with db.uow(env.org_id) as session:
        session.add(
            LeadScoringRule(
                organization_id=env.org_id,
                name="Has a company",
                rule_type="firmographic",
                criteria={"field": "company", "op": "exists", "value": True},
                score_points=15,
            )
        )
    await env.command("rules", user="U0ADM")
    listing = await env.reply(2)
    toggle = [e for b in listing["blocks"] if b["type"] == "actions" for e in b["elements"]][1]  # type: ignore[index,union-attr]
    assert toggle["text"]["text"] == "Disable"
    await env.command(f"score {lead_id} unlock", user="U0MGR")
    assert ":unlock:" in str((await env.reply(3))["text"])
    assert (await _score(db, env.org_id, lead_id))[0] == 15  # brought up to date on unlock


async def test_card_score_button_shows_the_breakdown(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    click = block_action(
        "lead-score-details",
        LeadRef(lead_id=lead_id).dumps(),
        user_id="U0REP",
        response_url=env.fake.response_url("s"),
    )
    assert (await env.client.action(click))[0] == 200
    reply = await env.reply()
    assert reply["response_type"] == "ephemeral"
    assert f"Score of #{lead_id} Jo" in json.dumps(reply)


async def test_crossing_into_hot_alerts_the_owner_once(env: SlackEnv, db: Database) -> None:
    async with db.uow(env.org_id) as session:
        org = await session.get(Organization, env.org_id)
        assert org is not None
        org.settings = {
            **(org.settings or {}),
            "scoring": {"warm_threshold": 20, "hot_threshold": 50, "hysteresis": 5},
        }
    lead_id = await _lead(env, db)
    await env.command(f"score {lead_id} adjust +60 demo booked", user="U0MGR")
    await env.reply()
    [alert] = await env.fake.wait_for("chat.postMessage", timeout=10)
    assert alert.params["channel"] == "U0REP"
    assert "is now hot" in str(alert.params["text"])
    await env.command(f"score {lead_id} adjust -7 cooled", user="U0MGR")  # 53: still hot
    await env.reply(2)
    await env.command(f"score {lead_id} adjust +5 again", user="U0MGR")
    await env.reply(3)
    assert len(env.fake.calls_to("chat.postMessage")) == 1
    assert await _score(db, env.org_id, lead_id) == (58, "hot")


async def test_list_hot_shows_only_hot_leads(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    async with db.uow(env.org_id) as session:
        cold = await create_lead(
            session,
            org_id=env.org_id,
            actor_id=env.users["U0REP"],
            data=LeadCreate(email="cold@x.test", first_name="Cold"),
        )
        cold_id = cold.id
    await env.command("list hot")
    assert "No hot leads right now" in json.dumps(await env.reply())
    await env.command(f"score {lead_id} adjust +60 demo booked", user="U0MGR")
    await env.reply(2)
    await env.command("list hot")
    shown = [
        LeadRef.model_validate_json(b["accessory"]["value"]).lead_id
        for b in (await env.reply(3))["blocks"]  # type: ignore[union-attr]
        if (b.get("accessory") or {}).get("action_id", "").startswith("lead-open")
    ]
    assert shown == [lead_id]
    assert cold_id not in shown
