"""The Slack test kit itself: FakeSlack answers slack_sdk like Slack does, and SlackClient's signed requests
are accepted by a real Bolt AsyncApp (a minimal one built here, not the project's)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack

SECRET = "test-signing-secret"
BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "s1", "text": {"type": "mrkdwn", "text": "*New lead*"}},
    {
        "type": "actions",
        "block_id": "a1",
        "elements": [
            {
                "type": "button",
                "action_id": "claim",
                "value": "42",
                "text": {"type": "plain_text", "text": "Claim"},
            }
        ],
    },
]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url)


# --- signing ---------------------------------------------------------------------------------------------


def test_sign_reproduces_slacks_published_example() -> None:
    assert (
        sr.sign(sr.SLACK_DOC_SIGNING_SECRET, sr.SLACK_DOC_TIMESTAMP, sr.SLACK_DOC_BODY)
        == sr.SLACK_DOC_SIGNATURE
    )


def test_slack_headers_verify_with_slack_sdk() -> None:
    body = sr.form_body(sr.slash_command("new acme", response_url="http://127.0.0.1:1/hooks/x"))
    headers = sr.slack_headers(SECRET, body, content_type=sr.FORM)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    stale = sr.slack_headers(SECRET, body, timestamp=int(time.time()) - 600, content_type=sr.FORM)
    assert not verifier.is_valid(body, stale["X-Slack-Request-Timestamp"], stale["X-Slack-Signature"])


def test_payloads_parse_as_bolt_requests() -> None:
    command = AsyncBoltRequest(body=sr.form_body(sr.slash_command("hi", response_url="u")).decode())
    assert command.context.team_id == sr.TEAM_ID
    assert command.context.user_id == sr.USER_ID
    assert command.body["command"] == "/lead"
    assert command.body["text"] == "hi"

    action = AsyncBoltRequest(
        body=sr.interactive_body(sr.block_action("claim", "42", response_url="u")).decode()
    )
    assert action.body["type"] == "block_actions"
    assert action.body["actions"][0]["value"] == "42"
    assert action.context.channel_id == sr.CHANNEL_ID
    assert action.context.user_id == sr.USER_ID

    values = {
        "email": {"email_input": sr.plain_text_value("a@b.co")},
        "stage": {"pick": sr.select_value("new")},
    }
    view = AsyncBoltRequest(body=sr.interactive_body(sr.view_submission("lead_new", values)).decode())
    assert view.body["view"]["state"]["values"]["stage"]["pick"]["selected_option"]["value"] == "new"
    assert view.context.team_id == sr.TEAM_ID

    mention = {"type": "app_mention", "user": sr.USER_ID, "text": "<@U0BOT> hi", "channel": sr.CHANNEL_ID}
    event = AsyncBoltRequest(body=json.dumps(sr.event_callback(mention)))
    assert event.context.team_id == sr.TEAM_ID
    assert event.context.channel_id == sr.CHANNEL_ID
    assert event.body["authorizations"][0]["user_id"] == sr.BOT_USER_ID


def test_block_action_variants() -> None:
    ephemeral = sr.block_action("claim", "42", response_url="u", ephemeral=True)
    assert ephemeral["container"]["is_ephemeral"] is True
    assert "message" not in ephemeral
    view = {"id": "V9", "type": "modal", "state": {"values": {"b": {"a": sr.plain_text_value("x")}}}}
    in_modal = sr.block_action("pick", "1", response_url=None, view=view)
    assert in_modal["container"] == {"type": "view", "view_id": "V9"}
    assert in_modal["state"] == view["state"]
    assert "channel" not in in_modal
    assert "response_url" not in in_modal


# --- the Web API fake --------------------------------------------------------------------------------------


async def test_chat_post_message_records_decoded_blocks_and_token(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="C0GENERAL", text="New lead", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="U0REP", text="dm")

    assert first["ok"]
    assert first["channel"] == "C0GENERAL"
    assert first["ts"] == "1700000000.000100"
    assert first["message"]["blocks"] == BLOCKS
    assert first["message"]["bot_id"] == slack.bot_id
    assert second["channel"] == "D0REP"
    assert float(second["ts"]) > float(first["ts"])
    call = slack.calls_to("chat.postMessage")[0]
    assert call.params["blocks"] == BLOCKS
    assert call.params["channel"] == "C0GENERAL"
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.token == "xoxb-test"
    assert call.status == 200
    assert call.ok


async def test_form_encoded_json_params_are_decoded(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.api_call("chat.postMessage", data={"channel": "C1", "blocks": json.dumps(BLOCKS)})
    await client.api_call(
        "chat.update", params={"channel": "C1", "ts": "1.2", "text": "x", "attachments": "[]"}
    )
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == BLOCKS
    assert slack.calls_to("chat.update")[0].params["attachments"] == []


async def test_conversations_users_and_views(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_user("U0REP", name="rep", real_name="Rita Rep", email="rita@example.com", tz="Europe/London")

    opened = await client.conversations_open(users="U0REP")
    again = await client.conversations_open(users="U0REP")
    assert opened["channel"] == {"id": "D0REP"}
    assert "no_op" not in opened.data
    assert again["already_open"] is True

    info = await client.users_info(user="U0REP")
    assert info["user"]["profile"]["email"] == "rita@example.com"
    assert info["user"]["real_name"] == "Rita Rep"
    assert info["user"]["tz"] == "Europe/London"
    assert info["user"]["tz_offset"] in (0, 3600)
    assert info["user"]["is_bot"] is False
    assert (await client.users_lookupByEmail(email="RITA@example.com"))["user"]["id"] == "U0REP"
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="U404")
    assert missing.value.response["error"] == "user_not_found"
    assert slack.calls_to("users.info")[1].http_method == "GET"

    view = {
        "type": "modal",
        "callback_id": "lead_new",
        "title": {"type": "plain_text", "text": "New lead"},
        "blocks": [],
    }
    opened_view = (await client.views_open(trigger_id="123.456.abc", view=view))["view"]
    assert opened_view["id"].startswith("V")
    assert opened_view["callback_id"] == "lead_new"
    assert opened_view["state"] == {"values": {}}
    assert opened_view["hash"]
    assert slack.calls_to("views.open")[0].params["view"] == view
    updated = await client.views_update(view_id=opened_view["id"], view=view, hash=opened_view["hash"])
    assert updated["view"]["id"] == opened_view["id"]
    assert updated["view"]["hash"] != opened_view["hash"]
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=opened_view["id"], view=view, hash=opened_view["hash"])
    assert conflict.value.response["error"] == "hash_conflict"

    permalink = await client.chat_getPermalink(channel="C0GENERAL", message_ts="1700000000.000100")
    assert permalink["permalink"].endswith("/archives/C0GENERAL/p1700000000000100")
    assert (await client.conversations_info(channel="C0GENERAL"))["channel"]["name"] == "general"
    assert (await client.chat_postEphemeral(channel="C0GENERAL", user="U0REP", text="psst"))["message_ts"]
    assert (await client.api_call("conversations.mark"))["ok"] is True  # unknown methods: ok, recorded
    assert slack.calls_to("conversations.mark")


async def test_malformed_json_answers_invalid_json(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"}
        async with session.post(slack.api_url + "chat.postMessage", data=b"{nope", headers=headers) as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": False, "error": "invalid_json"}
    assert slack.calls_to("chat.postMessage")[0].ok is False


@pytest.mark.filterwarnings(
    "ignore:BasicAuth is deprecated:DeprecationWarning"
)  # slack_sdk's oauth_v2_access
async def test_auth_test_oauth_and_tokens(slack: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == (sr.TEAM_ID, sr.BOT_USER_ID, sr.BOT_ID)
    assert auth["is_enterprise_install"] is False
    assert auth.headers["x-oauth-scopes"] == slack.scopes

    install = await AsyncWebClient(base_url=slack.api_url).oauth_v2_access(
        client_id="111.222", client_secret="s3cret", code="code-1"
    )
    assert install["access_token"].startswith("xoxb-")
    assert install["team"]["id"] == sr.TEAM_ID
    assert install["bot_user_id"] == sr.BOT_USER_ID
    assert install["authed_user"]["id"] == sr.USER_ID
    assert slack.calls_to("oauth.v2.access")[0].params["code"] == "code-1"

    with pytest.raises(SlackApiError) as no_token:
        await AsyncWebClient(base_url=slack.api_url).auth_test()
    assert no_token.value.response["error"] == "not_authed"
    slack.reject_token("xoxb-test", "token_revoked")
    with pytest.raises(SlackApiError) as revoked:
        await client.auth_test()
    assert revoked.value.response["error"] == "token_revoked"


async def test_files_upload_v2_round_trip(slack: FakeSlack, client: AsyncWebClient) -> None:
    result = await client.files_upload_v2(
        channel="C0GENERAL", content="id,email\n1,a@b.co\n", filename="leads.csv"
    )
    [file_id] = slack.uploads
    assert slack.uploads[file_id] == b"id,email\n1,a@b.co\n"
    assert result["file"]["id"] == file_id
    assert result["file"]["size"] == len(slack.uploads[file_id])
    assert [c.method for c in slack.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    assert slack.calls[1].params["files"] == [{"id": file_id, "title": "leads.csv"}]


# --- knobs -------------------------------------------------------------------------------------------------


async def test_delay_holds_the_answer(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.delay("chat.postMessage", 0.2)
    started = time.monotonic()
    await client.chat_postMessage(channel="C1", text="slow")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await client.conversations_open(users="U1")
    assert time.monotonic() - started < 0.2


async def test_fail_answers_ok_false(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", "channel_not_found", times=1)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C404", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]

    slack.fail("*", "invalid_auth")  # forever, any method
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.auth_test()
    assert [c.ok for c in slack.calls] == [False, True, False, False]


async def test_rate_limit_and_http_errors(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]  # times=1: used up

    slack.http_error("users.info", 503)
    with pytest.raises(SlackApiError) as unavailable:
        await client.users_info(user=sr.BOT_USER_ID)
    assert unavailable.value.response.status_code == 503
    assert (await client.users_info(user=sr.BOT_USER_ID))["user"]["is_bot"] is True


async def test_pace_channels_answers_429_for_a_second_post_to_a_channel_within_the_interval(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    assert (await client.chat_postMessage(channel="U1", text="a"))["ok"]
    assert (await client.chat_postMessage(channel="U1", text="b"))["ok"]  # off by default
    slack.pace_channels(0.5)
    assert (await client.chat_postMessage(channel="U1", text="c"))["ok"]
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="D1", text="d")  # U1's DM: the same channel
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "1"
    assert (await client.chat_postMessage(channel="U2", text="e"))["ok"]  # other channels are not held up
    await asyncio.sleep(0.55)
    assert (await client.chat_postMessage(channel="U1", text="f"))["ok"]
    assert [m["text"] for (ch, _), m in slack.messages.items() if ch == "D1"] == ["a", "b", "c", "f"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 200, 200, 429, 200, 200]

    slack.pace_channels(5.0, retry_after=3)  # starts afresh: no channel has a last post
    assert (await client.chat_postMessage(channel="U1", text="g"))["ok"]
    with pytest.raises(SlackApiError) as fixed:
        await client.chat_postMessage(channel="U1", text="h")
    assert fixed.value.response.headers["Retry-After"] == "3"


async def test_pace_channels_is_off_after_reset(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.pace_channels(10.0)
    assert (await client.chat_postMessage(channel="C1", text="a"))["ok"]
    slack.reset()
    assert (await client.chat_postMessage(channel="C1", text="b"))["ok"]
    assert (await client.chat_postMessage(channel="C1", text="c"))["ok"]


async def test_rate_limit_retry_handler_honours_retry_after(slack: FakeSlack) -> None:
    client = AsyncWebClient(
        token="xoxb-test",
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.rate_limit("chat.postMessage", retry_after=0)
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


async def test_stub_and_reset(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.stub("conversations.replies", {"ok": True, "messages": [{"type": "message", "text": "hello"}]})
    slack.stub("bots.info", lambda call: {"ok": True, "bot": {"id": call.params["bot"]}})
    assert (await client.conversations_replies(channel="C1", ts="1.0"))["messages"][0]["text"] == "hello"
    assert (await client.bots_info(bot="B9"))["bot"] == {"id": "B9"}
    slack.fail("*", "fatal_error")
    slack.reset()
    assert slack.calls == []
    assert (await client.conversations_replies(channel="C1", ts="1.0")).data == {"ok": True}
    assert sr.BOT_USER_ID in slack.users  # directory data survives reset()


# --- waiting and response_url ------------------------------------------------------------------------------


async def test_wait_for_sees_later_calls(slack: FakeSlack, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C1", text="one")
        await client.chat_postMessage(channel="C1", text="two")

    task = asyncio.create_task(later())
    calls = await slack.wait_for("chat.postMessage", count=2, timeout=2)
    await task
    assert [c.params["text"] for c in calls] == ["one", "two"]


async def test_wait_for_times_out_with_a_summary(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="only one")
    with pytest.raises(AssertionError) as err:
        await slack.wait_for("chat.postMessage", count=2, timeout=0.1)
    message = str(err.value)
    assert "waiting for 2 call(s) to 'chat.postMessage'; saw 1" in message
    assert "chat.postMessage" in message
    assert "only one" in message
    assert "-> 200" in message


async def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    url = slack.response_url()
    assert url.startswith(slack.base_url + "/hooks/cmd-")
    assert url != slack.response_url()
    response = await AsyncWebhookClient(url).send(
        text="Lead created", response_type="ephemeral", blocks=BLOCKS
    )
    assert (response.status_code, response.body) == (200, "ok")
    [post] = await slack.wait_for("response_url")
    assert post.params["text"] == "Lead created"
    assert post.params["blocks"] == BLOCKS
    assert slack.response_posts[0].path == url.removeprefix(slack.base_url)
    assert slack.response_posts[0].body["response_type"] == "ephemeral"

    slack.fail("response_url", "expired_url", times=1)
    expired = await AsyncWebhookClient(url).send(text="again")
    assert (expired.status_code, expired.body) == (404, "expired_url")
    assert len(await slack.wait_for_response_posts(2)) == 2


# --- SlackClient against a real Bolt app -------------------------------------------------------------------


async def test_slack_client_drives_a_bolt_app(slack: FakeSlack) -> None:
    app = AsyncApp(
        signing_secret=SECRET,
        token="xoxb-test",
        client=AsyncWebClient(token="xoxb-test", base_url=slack.api_url),
    )
    retries: list[list[str]] = []

    @app.command("/lead")
    async def lead(
        ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await respond(f"creating {command['text']}")
        await client.chat_postMessage(channel=command["channel_id"], text="lead created", blocks=BLOCKS)

    @app.action("claim")
    async def claim(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]) -> None:
        await ack()
        await respond(replace_original=True, text=f"claimed {body['actions'][0]['value']}")

    @app.event("app_mention")
    async def mention(event: dict[str, Any], request: AsyncBoltRequest, client: AsyncWebClient) -> None:
        retries.append(list(request.headers.get("x-slack-retry-num", [])))
        await client.chat_postMessage(channel=event["channel"], text="hi")

    server = TestServer(app.web_app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            bot = sr.SlackClient(
                session, str(server.make_url("/slack/events")), SECRET, response_url=slack.response_url
            )

            assert (await bot.command("acme corp"))[0] == 200
            await slack.wait_for("auth.test")  # Bolt authorizes against the fake
            [post] = await slack.wait_for("response_url")
            assert post.params["text"] == "creating acme corp"
            [message] = await slack.wait_for("chat.postMessage")
            assert message.params["blocks"] == BLOCKS
            assert message.token == "xoxb-test"

            status, _ = await bot.action(
                sr.block_action("claim", "42", response_url=slack.response_url("act"))
            )
            assert status == 200
            posts = await slack.wait_for("response_url", count=2)
            assert posts[1].params == {"replace_original": True, "text": "claimed 42"}

            mention_event = {
                "type": "app_mention",
                "user": sr.USER_ID,
                "text": "<@U0BOT> hi",
                "channel": "C0GENERAL",
            }
            assert (
                await bot.event(sr.event_callback(mention_event), retry_num=1, retry_reason="http_timeout")
            )[0] == 200
            await slack.wait_for("chat.postMessage", count=2)
            assert retries == [["1"]]

            body = sr.form_body(sr.slash_command("x", response_url=slack.response_url()))
            forged = sr.slack_headers("wrong-secret", body, content_type=sr.FORM)
            assert (await bot.raw(body, forged))[0] == 401
            with pytest.raises(TypeError):
                await sr.SlackClient(session, bot.url, SECRET).command("no response_url")
    finally:
        await server.close()


async def test_conversations_history_lists_a_dm_newest_first_with_metadata_on_request(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    meta = {"event_type": "lma_reminder", "event_payload": {"send_key": "k1"}}
    first = await client.chat_postMessage(channel="U0REP", text="one", metadata=meta)
    await client.chat_postMessage(channel="U0REP", text="two")
    await client.chat_postMessage(channel="C1", text="elsewhere")
    plain = await client.conversations_history(channel=first["channel"])
    assert [m["text"] for m in plain["messages"]] == ["two", "one"]
    assert all("metadata" not in m for m in plain["messages"])
    full = await client.conversations_history(channel=first["channel"], include_all_metadata=True, limit=1)
    assert [m["text"] for m in full["messages"]] == ["two"]
    assert full["has_more"] is True
    older = await client.conversations_history(channel=first["channel"], include_all_metadata=True)
    assert older["messages"][1]["metadata"] == meta
