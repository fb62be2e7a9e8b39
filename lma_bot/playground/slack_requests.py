"""Requests from Slack to the bot, built and signed exactly as Slack builds and signs them.

Signing (Slack's "Verifying requests from Slack"): ``X-Slack-Signature`` is ``"v0=" + hex(HMAC-SHA256(
signing_secret, b"v0:" + X-Slack-Request-Timestamp + b":" + raw_body))``. ``SLACK_DOC_*`` below is the
worked example Slack publishes on that page; ``sign()`` reproduces it.

Payload shapes follow Slack's slash-command, ``block_actions``, ``view_submission`` and Events API
(``event_callback``) references. Defaults describe one workspace (``TEAM_ID``) with one rep (``USER_ID``)
in ``#general`` and our app (``APP_ID``) whose bot user is ``BOT_USER_ID`` - the same identities
``FakeSlack``'s ``auth.test`` reports, so Bolt's self-event filtering and authorization line up.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

# --- Slack's published signing example ("Verifying requests from Slack") -----------------------------
SLACK_DOC_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # noqa: S105 - Slack's public example
SLACK_DOC_TIMESTAMP = "1531420618"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

# --- The fake workspace -------------------------------------------------------------------------------
TEAM_ID = "T0TEAM"
TEAM_NAME = "LMA Test Workspace"
TEAM_DOMAIN = "lma-test"
ENTERPRISE_NAME = "LMA Test Grid"
USER_ID = "U0REP"
USER_NAME = "rep"
CHANNEL_ID = "C0GENERAL"
CHANNEL_NAME = "general"
APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "lma-bot"
# The legacy verification token Slack still puts in every payload (Bolt ignores it when signing is on).
VERIFICATION_TOKEN = "fakeVerificationToken0000"  # noqa: S105

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"

_trigger_seq = itertools.count(398738663015)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends for ``body`` at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(
    secret: str, body: bytes, *, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """The headers Slack sends with ``body``: content type, request timestamp (now by default), signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
    }


def new_trigger_id() -> str:
    """A trigger id shaped like Slack's (``<seq>.<team-ish>.<32 hex>``); unique per call."""
    return f"{next(_trigger_seq)}.47445629121.{secrets.token_hex(16)}"


def _now_ts() -> str:
    return f"{time.time():.6f}"


def _channel_name(channel_id: str) -> str:
    return CHANNEL_NAME if channel_id == CHANNEL_ID else channel_id[1:].lower()


def _enterprise(enterprise_id: str | None) -> dict[str, str] | None:
    return None if enterprise_id is None else {"id": enterprise_id, "name": ENTERPRISE_NAME}


def slash_command(
    text: str,
    *,
    team_id: str = TEAM_ID,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    channel_id: str = CHANNEL_ID,
    channel_name: str | None = None,
    command: str = "/lead",
    response_url: str,
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
    api_app_id: str = APP_ID,
) -> dict[str, str]:
    """The form fields Slack posts for a slash command, in Slack's order."""
    fields: dict[str, str] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
    }
    if enterprise_id is not None:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = ENTERPRISE_NAME
    fields.update(
        {
            "channel_id": channel_id,
            "channel_name": channel_name or _channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or new_trigger_id(),
        }
    )
    return fields


def _user(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def block_action(
    action_id: str,
    value: str,
    *,
    team_id: str = TEAM_ID,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    channel_id: str = CHANNEL_ID,
    response_url: str | None,
    message: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    trigger_id: str | None = None,
    block_id: str = "b",
    view: dict[str, Any] | None = None,
    ephemeral: bool = False,
    action_type: str = "button",
    button_text: str = "Button",
    enterprise_id: str | None = None,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one button click.

    From a message (the default): ``container`` is the message, ``channel``/``message``/``response_url``
    are set; a message is synthesized (posted by our bot, holding the button) unless one is given.
    ``ephemeral=True`` models a click in an ephemeral message: Slack sends no ``message`` then.
    From a modal (``view`` given): ``container`` is the view, ``view`` is set, and there is no channel,
    message or response_url (pass ``response_url=None``).
    """
    action_ts = _now_ts()
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "value": value,
        "type": action_type,
        "action_ts": action_ts,
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": _enterprise(enterprise_id),
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = container or {"type": "view", "view_id": view.get("id", "V0VIEW")}
        payload["view"] = view
        payload["state"] = view.get("state", {"values": {}})
    else:
        message_ts = (message or {}).get("ts") or f"{int(time.time()) - 5}.000100"
        if message is None and not ephemeral:
            message = {
                "type": "message",
                "subtype": "bot_message",
                "text": "This content can't be displayed.",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": api_app_id,
                "team": team_id,
                "ts": message_ts,
                "blocks": [
                    {
                        "type": "actions",
                        "block_id": block_id,
                        "elements": [
                            {
                                "type": action_type,
                                "action_id": action_id,
                                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                                "value": value,
                            }
                        ],
                    }
                ],
            }
        payload["container"] = container or {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": ephemeral,
        }
        payload["channel"] = {"id": channel_id, "name": _channel_name(channel_id)}
        if message is not None:
            payload["message"] = message
        payload["state"] = {"values": {}}
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def plain_text_value(value: str | None) -> dict[str, Any]:
    """``state.values[block][action]`` for a ``plain_text_input`` (``None`` = left empty)."""
    return {"type": "plain_text_input", "value": value}


def select_value(value: str | None, text: str | None = None) -> dict[str, Any]:
    """``state.values[block][action]`` for a ``static_select`` (``None`` = nothing selected)."""
    option = None
    if value is not None:
        option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": "static_select", "selected_option": option}


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    private_metadata: str = "",
    team_id: str = TEAM_ID,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    view_id: str = "V0VIEW",
    view_hash: str = "h1",
    title: str = "Modal",
    blocks: list[dict[str, Any]] | None = None,
    enterprise_id: str | None = None,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``values`` is ``state.values`` (block_id -> action_id -> value)."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks if blocks is not None else [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": view_hash,
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": _enterprise(enterprise_id),
    }


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str = TEAM_ID,
    event_id: str = "Ev0001",
    api_app_id: str = APP_ID,
    event_time: int | None = None,
    bot_user_id: str = BOT_USER_ID,
    enterprise_id: str | None = None,
) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }


def url_verification(
    challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
) -> dict[str, Any]:
    """The handshake Slack posts when an Events API request URL is saved."""
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def form_body(fields: dict[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` bytes for ``fields`` (as Slack encodes slash commands)."""
    return urlencode(fields).encode()


def interactive_body(payload: dict[str, Any]) -> bytes:
    """An interactivity request body: ``payload=<urlencoded JSON>``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


class SlackClient:
    """Plays Slack: posts signed requests to the bot's ``/slack/events`` URL.

    ``response_url`` (e.g. ``fake.response_url``) supplies the ``response_url`` of slash commands that
    don't pass one, so the bot's ``respond()`` lands on the fake rather than on the real Slack.
    Every method returns ``(HTTP status, response body text)``.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        *,
        response_url: Callable[[str], str] | None = None,
    ) -> None:
        self.session = session
        self.url = url
        self.secret = secret
        self._response_url = response_url

    async def command(self, text: str, **kw: Any) -> tuple[int, str]:
        """Signed slash command; ``kw`` goes to ``slash_command()`` (command, user_id, channel_id, ...)."""
        if "response_url" not in kw:
            if self._response_url is None:
                raise TypeError(
                    "command() needs response_url= (or SlackClient(response_url=fake.response_url))"
                )
            kw["response_url"] = self._response_url("cmd")
        body = form_body(slash_command(text, **kw))
        return await self.raw(body, slack_headers(self.secret, body, content_type=FORM))

    async def action(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Signed interactivity request carrying a ``block_actions`` payload."""
        return await self._interactive(payload)

    async def view(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Signed interactivity request carrying a ``view_submission`` / ``view_closed`` payload."""
        return await self._interactive(payload)

    async def event(
        self,
        envelope: dict[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> tuple[int, str]:
        """Signed Events API delivery (JSON); ``retry_num``/``retry_reason`` mark Slack's redeliveries."""
        body = json.dumps(envelope).encode()
        headers = slack_headers(self.secret, body, content_type=JSON)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self.raw(body, headers)

    async def raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """Post ``body`` with exactly ``headers`` (nothing is signed or added here)."""
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def _interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        body = interactive_body(payload)
        return await self.raw(body, slack_headers(self.secret, body, content_type=FORM))
