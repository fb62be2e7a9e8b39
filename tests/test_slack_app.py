"""`/lead` end to end: signed requests over loopback HTTP, real PostgreSQL and Redis, fake Slack Web API.
Each test asserts on the HTTP answer, the database and the Slack calls the bot made."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from handlers.slack.ids import LeadRef, PageRequest
from lma_bot.db import Database
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_requests import block_action, plain_text_value, view_submission
from tests.slack_env import SlackEnv, slack_env


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


async def _leads(db: Database, org: int) -> list[dict[str, object]]:
    async with db.uow(org) as session:
        rows = await session.execute(
            text(
                "SELECT id, email, first_name, last_name, company, source, tags, status, created_by FROM leads ORDER BY id"
            )
        )
        return [dict(r._mapping) for r in rows]


def _text(body: dict[str, object]) -> str:
    return json.dumps(body, ensure_ascii=False)


# ------------------------------------------------------------------------------------------- create


async def test_create_from_text_writes_lead_and_activity_and_answers_ephemeral(
    env: SlackEnv, db: Database
) -> None:
    status, body = await env.command("create ann@acme.com Ann Lee company=Acme tags=q4,inbound")
    assert (status, body) == (200, "")
    reply = await env.reply()
    assert reply["response_type"] == "ephemeral"
    leads = await _leads(db, env.org_id)
    assert len(leads) == 1
    lead = leads[0]
    assert (lead["email"], lead["first_name"], lead["last_name"], lead["company"]) == (
        "ann@acme.com",
        "Ann",
        "Lee",
        "Acme",
    )
    assert (lead["source"], lead["tags"], lead["created_by"]) == (
        "slack",
        ["q4", "inbound"],
        env.users["U0REP"],
    )
    assert f"Created *#{lead['id']} Ann Lee*" in _text(reply)
    async with db.uow(env.org_id) as session:
        activity = (
            await session.execute(
                text("SELECT activity_type, user_id FROM activity_logs WHERE lead_id = :l"), {"l": lead["id"]}
            )
        ).all()
    assert [tuple(a) for a in activity] == [("lead.created", env.users["U0REP"])]


async def test_create_duplicate_email_offers_the_existing_lead(env: SlackEnv, db: Database) -> None:
    await env.command("create ann@acme.com Ann")
    await env.reply()
    await env.command("create ANN@acme.com Annie")
    reply = await env.reply(2)
    leads = await _leads(db, env.org_id)
    assert len(leads) == 1
    assert "is already" in _text(reply)
    assert "Nothing was created" in _text(reply)
    button = reply["blocks"][0]["accessory"]  # type: ignore[index]
    assert button["action_id"] == "lead-open"
    assert LeadRef.model_validate_json(button["value"]).lead_id == leads[0]["id"]


async def test_create_without_arguments_opens_the_form_within_the_trigger_window(env: SlackEnv) -> None:
    started = time.monotonic()
    status, _ = await env.command("create")
    assert status == 200
    [call] = await env.fake.wait_for("views.open")
    assert call.at - started < 3.0
    assert call.params["view"]["callback_id"] == "lead-create"


async def test_create_form_validates_fields_and_a_double_submit_creates_one_lead(
    env: SlackEnv, db: Database
) -> None:
    bad = view_submission(
        "lead-create",
        {
            "email": {"email": plain_text_value("not-an-email")},
            "first_name": {"first_name": plain_text_value("Bo")},
        },
        user_id="U0REP",
        view_id="V0FORM1",
    )
    status, body = await env.client.view(bad)
    assert status == 200
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"email": "not a valid email address: 'not-an-email'"},
    }
    assert await _leads(db, env.org_id) == []

    empty = view_submission("lead-create", {}, user_id="U0REP", view_id="V0FORM1")
    status, body = await env.client.view(empty)
    assert json.loads(body)["errors"] == {"email": "a lead needs at least an email, a name or a company"}

    good = view_submission(
        "lead-create",
        {"email": {"email": plain_text_value("bo@x.io")}, "tags": {"tags": plain_text_value("a, b")}},
        user_id="U0REP",
        view_id="V0FORM1",
    )
    results = await asyncio.gather(env.client.view(good), env.client.view(good))
    assert [r[0] for r in results] == [200, 200]
    leads = await _leads(db, env.org_id)
    assert len(leads) == 1
    assert leads[0]["tags"] == ["a", "b"]
    [dm] = await env.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "U0REP"
    assert f"#{leads[0]['id']}" in json.dumps(dm.params["blocks"])


# -------------------------------------------------------------------------------------- show / list


async def test_show_by_id_and_email_renders_the_card_through_the_cache(env: SlackEnv, db: Database) -> None:
    await env.command("create ann@acme.com Ann Lee company=Acme")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    await env.command(f"show {lead_id}")
    card = await env.reply(2)
    assert card["blocks"][0]["text"]["text"] == f"#{lead_id} Ann Lee"  # type: ignore[index]
    cached = (
        await env.server.app["redis"].get(f"{env.settings.redis_prefix}lead:{lead_id}") if False else None
    )
    del cached
    await env.command("show ann@acme.com")
    assert (await env.reply(3))["blocks"][0]["text"]["text"] == f"#{lead_id} Ann Lee"  # type: ignore[index]


async def test_show_unknown_lead_is_a_clear_ephemeral(env: SlackEnv) -> None:
    await env.command("show 999999")
    reply = await env.reply()
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == ":warning: Lead 999999 not found"


async def test_list_pages_newest_first_with_next_and_previous(env: SlackEnv, db: Database) -> None:
    for i in range(12):
        await env.command(f"create p{i}@x.io Person {i}")
    await env.fake.wait_for_response_posts(12)
    async with db.uow(env.org_id) as session:
        newest_first = list(
            (await session.execute(text("SELECT id FROM leads ORDER BY created_at DESC, id DESC"))).scalars()
        )
    await env.command("list")
    first = await env.reply(13)
    shown = [b["accessory"]["value"] for b in first["blocks"] if b.get("accessory")]  # type: ignore[union-attr]
    assert [LeadRef.model_validate_json(v).lead_id for v in shown] == newest_first[:10]
    next_button = first["blocks"][-1]["elements"][-1]  # type: ignore[index]
    assert next_button["text"]["text"] == "Next"
    click = block_action(
        next_button["action_id"],
        next_button["value"],
        user_id="U0REP",
        response_url=env.fake.response_url("act"),
    )
    assert (await env.client.action(click))[0] == 200
    second = await env.reply(14)
    assert second["replace_original"] is True
    shown = [b["accessory"]["value"] for b in second["blocks"] if b.get("accessory")]  # type: ignore[union-attr]
    assert [LeadRef.model_validate_json(v).lead_id for v in shown] == newest_first[10:]
    prev = second["blocks"][-1]["elements"][0]  # type: ignore[index]
    assert prev["text"]["text"] == "Previous"
    assert PageRequest.model_validate_json(prev["value"]).before is not None


async def test_list_mine_empty_state_and_bad_filter(env: SlackEnv) -> None:
    await env.command("list mine")
    assert "You own no leads yet" in _text(await env.reply())
    status, body = await env.command("list status:zombie")
    assert status == 200
    await env.reply(2)
    assert "Unknown status 'zombie'" in _text(env.fake.response_posts[1].body)
    status, body = await env.command("list everything")
    assert status == 200
    assert "unknown filter `everything`" in body
    assert "/lead list [mine|unassigned" in body


async def test_find_matches_name_company_and_email(env: SlackEnv) -> None:
    await env.command("create ann@acme.com Ann Lee company=Acme")
    await env.command("create hank@globex.io Hank Scorpio")
    await env.fake.wait_for_response_posts(2)
    await env.command("find globex")
    reply = _text(await env.reply(3))
    assert "Hank Scorpio" in reply
    assert "Ann Lee" not in reply


# ------------------------------------------------------------------------------------------- status


async def test_status_change_and_invalid_transition(env: SlackEnv, db: Database) -> None:
    await env.command("create s@x.io Sam")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    await env.command(f"status {lead_id} contacted left a voicemail")
    assert "new → *contacted*" in _text(await env.reply(2))
    await env.command(f"status {lead_id} won")
    reply = await env.reply(3)
    assert (
        reply["text"]
        == f":warning: Lead {lead_id} can't go from contacted to won; from contacted it can go to qualified, unqualified, lost"
    )
    assert (await _leads(db, env.org_id))[0]["status"] == "contacted"
    await env.command(f"show {lead_id}")  # the cached card was invalidated by the change
    card = await env.reply(4)
    assert card["blocks"][1]["fields"][2]["text"] == "*Status*\ncontacted"  # type: ignore[index]
    async with db.uow(env.org_id) as session:
        row = (
            await session.execute(
                text(
                    "SELECT description, before, after FROM activity_logs WHERE activity_type = 'lead.status_changed'"
                )
            )
        ).one()
    assert tuple(row) == ("left a voicemail", {"status": "new"}, {"status": "contacted"})


# -------------------------------------------------------------------------------------------- notes


async def test_note_with_mentions_dms_each_mentioned_user_once(env: SlackEnv, db: Database) -> None:
    await env.command("create n@x.io Nora")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    await env.command(f"note {lead_id} demo went well <@U0MGR|mia> and <@U0REP2> — again <@U0MGR>")
    reply = await env.reply(2)
    assert "Notified <@U0MGR>, <@U0REP2>" in reply["text"]  # type: ignore[operator]
    opened = [c.params["users"] for c in env.fake.calls_to("conversations.open")]
    assert sorted(opened) == ["U0MGR", "U0REP2"]
    dms = env.fake.calls_to("chat.postMessage")
    assert len(dms) == 2
    assert all(f"#{lead_id} Nora" in json.dumps(d.params["blocks"]) for d in dms)
    async with db.uow(env.org_id) as session:
        mentioned = (await session.execute(text("SELECT mentioned_users, is_private FROM lead_notes"))).one()
    assert tuple(mentioned) == ([env.users["U0MGR"], env.users["U0REP2"]], False)


async def test_private_note_notifies_only_those_who_may_see_it(env: SlackEnv, db: Database) -> None:
    await env.command("create p@x.io Pat")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    await env.command(f"note {lead_id} --private budget is 10k <@U0REP2> <@U0MGR>")
    await env.reply(2)
    assert [c.params["users"] for c in env.fake.calls_to("conversations.open")] == ["U0MGR"]
    # The other rep does not see the private note on the card; the manager does.
    await env.command(f"show {lead_id}", user="U0REP2")
    assert "budget is 10k" not in _text(await env.reply(3))
    await env.command(f"show {lead_id}", user="U0MGR")
    assert "budget is 10k" in _text(await env.reply(4))


async def test_mentioning_a_non_user_offers_to_add_them_and_only_managers_may(
    env: SlackEnv, db: Database
) -> None:
    await env.command("create q@x.io Quinn")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    await env.command(f"note {lead_id} looping in <@U0NEW>")
    await env.reply(2)
    offer = await env.reply(3)
    button = offer["blocks"][1]["accessory"]  # type: ignore[index]
    assert button["text"]["text"] == "Add as user"
    rep_click = block_action(
        button["action_id"], button["value"], user_id="U0REP", response_url=env.fake.response_url("act")
    )
    await env.client.action(rep_click)
    assert "Only managers and admins can add users" in _text(await env.reply(4))
    mgr_click = block_action(
        button["action_id"], button["value"], user_id="U0MGR", response_url=env.fake.response_url("act")
    )
    await env.client.action(mgr_click)
    assert "<@U0NEW> is now an lma-bot rep" in _text(await env.reply(5))
    async with db.uow(env.org_id) as session:
        row = (
            await session.execute(
                text("SELECT name, email, role, timezone FROM users WHERE slack_user_id = 'U0NEW'")
            )
        ).one()
    assert tuple(row) == ("Nico Newbie", "nico@acme.test", "rep", "America/Chicago")


async def test_note_from_card_button_opens_modal_and_submission_saves(env: SlackEnv, db: Database) -> None:
    await env.command("create m@x.io Max")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    click = block_action(
        "lead-add-note",
        LeadRef(lead_id=lead_id).dumps(),
        user_id="U0REP",
        response_url=env.fake.response_url("act"),
    )
    await env.client.action(click)
    [opened] = await env.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "lead-add-note"
    submit = view_submission(
        "lead-add-note",
        {
            "note": {"note": plain_text_value("call booked <@U0MGR>")},
            "private": {"private": {"type": "checkboxes", "selected_options": []}},
        },
        private_metadata=view["private_metadata"],
        user_id="U0REP",
        view_id="V0NOTE",
    )
    status, body = await env.client.view(submit)
    assert (status, body) == (200, "")
    await env.fake.wait_for("chat.postMessage", 2)  # the manager's DM and the author's confirmation
    async with db.uow(env.org_id) as session:
        assert (
            await session.execute(text("SELECT content FROM lead_notes"))
        ).scalar_one() == "call booked <@U0MGR>"


# ---------------------------------------------------------------------------------- help and usage


async def test_help_and_unknown_subcommand(env: SlackEnv) -> None:
    status, body = await env.command("launch rockets")
    assert status == 200
    assert "I don't know `launch`" in body
    assert "/lead create <email>" in body
    await env.command("help")
    assert "/lead note <id|email> [--private]" in _text(await env.reply())
    status, body = await env.command("score 1 adjust 10 because")
    assert "say how much: `+10`, `-5` or `=50`" in body
    assert "/lead score <id|email> [adjust" in body


# --------------------------------------------------------------------------------- people and teams


async def test_unknown_member_is_provisioned_as_rep_from_users_info(env: SlackEnv, db: Database) -> None:
    await env.command("list", user="U0NEW")
    await env.reply()
    assert [c.params["user"] for c in env.fake.calls_to("users.info")] == ["U0NEW"]
    async with db.uow(env.org_id) as session:
        row = (
            await session.execute(text("SELECT role, name FROM users WHERE slack_user_id = 'U0NEW'"))
        ).one()
    assert tuple(row) == ("rep", "Nico Newbie")


async def test_deactivated_members_are_refused(env: SlackEnv, db: Database) -> None:
    env.fake.add_user("U0GONE", name="gone", deleted=True)
    await env.command("list", user="U0GONE")
    assert "deactivated" in _text(await env.reply())
    async with db.uow(env.org_id) as session:
        await session.execute(text("UPDATE users SET is_active = false WHERE slack_user_id = 'U0REP2'"))
    await env.command("list", user="U0REP2")
    assert "Your lma-bot account is deactivated" in _text(await env.reply(2))


async def test_unknown_workspace_gets_the_admin_command(env: SlackEnv, db: Database) -> None:
    await env.command("list", team_id="T0OTHER")
    reply = await env.reply()
    assert "not set up for lma-bot yet" in reply["text"]  # type: ignore[operator]
    assert "lma-bot orgs create --name" in reply["text"]
    assert "--slack-team-id T0OTHER" in reply["text"]


async def test_a_member_of_workspace_b_never_sees_workspace_a_leads(
    env: SlackEnv, db: Database, test_database: ScratchDatabase, servers: Servers
) -> None:
    await env.command("create secret@a.io Alice")
    await env.reply()
    lead_id = (await _leads(db, env.org_id))[0]["id"]
    from tests.support import new_org

    await new_org(db, name="Other", slack_team_id="T0OTHER")
    answers = {
        f"show {lead_id}": f"Lead {lead_id} not found",
        "show secret@a.io": "No lead with the email secret@a.io",
        "find alice": "No lead matches",
        "list": "No leads here yet",
    }
    for command, expected in answers.items():
        before = len(env.fake.response_posts)
        await env.command(command, team_id="T0OTHER", user="U0NEW")
        reply = _text(await env.reply(before + 1))
        assert expected in reply, (command, reply)
        assert "Alice" not in reply, (command, reply)


# ------------------------------------------------------------------------------------------- App Home


async def test_app_home_lists_my_open_leads_hot_first(env: SlackEnv, db: Database) -> None:
    from tests.fakes.slack_requests import event_callback

    me = env.users["U0REP"]
    async with db.uow(env.org_id) as session:
        await session.execute(
            text(
                "INSERT INTO leads (organization_id, email, first_name, assigned_to_id, lead_temperature, score, status) VALUES "
                "(:o, 'cold@x.io', 'Cold', :u, 'cold', 5, 'new'), (:o, 'hot@x.io', 'Hot', :u, 'hot', 90, 'qualified'), "
                "(:o, 'won@x.io', 'Won', :u, 'hot', 99, 'won'), (:o, 'theirs@x.io', 'Theirs', NULL, 'hot', 80, 'new')"
            ),
            {"o": env.org_id, "u": me},
        )
    home = event_callback(
        {"type": "app_home_opened", "user": "U0REP", "channel": "D0HOME", "tab": "home"}, event_id="Ev0HOME"
    )
    assert (await env.client.event(home))[0] == 200
    [publish] = await env.fake.wait_for("views.publish")
    assert publish.params["user_id"] == "U0REP"
    shown = json.dumps(publish.params["view"])
    assert shown.index("Hot") < shown.index("Cold")
    assert "Won" not in shown
    assert "Theirs" not in shown
