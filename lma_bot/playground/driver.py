"""What the page's clicks become: requests to the bot's ``POST /slack/events``, built and signed exactly as
Slack builds and signs them (:mod:`lma_bot.playground.slack_requests`), over HTTP through the same guard as
production. The answers (an ack's body) are applied to the stand-in as Slack would apply them."""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from lma_bot.playground import directory
from lma_bot.playground.directory import Person, Workspace
from lma_bot.playground.slack_requests import (
    APP_ID,
    BOT_ID,
    VERIFICATION_TOKEN,
    SlackClient,
    event_callback,
    new_trigger_id,
    view_submission,
)
from lma_bot.playground.stand_in import HookContext, PlaygroundSlack, now_ts

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
MENTION = re.compile(r"(?<![<\w])@([a-z][a-z0-9._-]*)", re.IGNORECASE)
CHANNEL_REF = re.compile(r"(?<![<\w])#([a-z][a-z0-9_-]*)", re.IGNORECASE)
KNOWN_COMMANDS = ("/lead",)


class PlaygroundError(Exception):
    """A request the page made that Slack would not allow (unknown person, channel of another workspace)."""


@dataclass(frozen=True)
class Who:
    space: Workspace
    person: Person


def who(team_id: str, user_id: str) -> Who:
    space = directory.workspace(team_id)
    person = space.person(user_id) if space else None
    if space is None or person is None:
        raise PlaygroundError(f"no person {user_id} in workspace {team_id}")
    return Who(space, person)


def escape_text(space: Workspace, text: str) -> str:
    """What Slack sends for a command with ``should_escape``: ``@mia`` as ``<@U1MANAGER|mia>``, ``#approvals``
    as ``<#C1APPROVALS|approvals>`` (names of this workspace only)."""

    def person(match: re.Match[str]) -> str:
        handle = match.group(1).lower()
        found = next((p for p in space.people if p.handle == handle), None)
        return f"<@{found.slack_id}|{found.handle}>" if found else match.group(0)

    def channel(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        found = next((c for c in space.channels if c.name == name), None)
        return f"<#{found.id}|{found.name}>" if found else match.group(0)

    return CHANNEL_REF.sub(channel, MENTION.sub(person, text))


class Driver:
    """Plays Slack for one playground: the page's actions in, signed requests to ``/slack/events`` out."""

    def __init__(self, slack: PlaygroundSlack, session: aiohttp.ClientSession, events_url: str, secret: str):
        self.slack = slack
        self.client = SlackClient(session, events_url, secret)
        self._event_seq = itertools.count(1)

    def _check_channel(self, space: Workspace, channel: str) -> None:
        if directory.workspace_of_channel(channel) is not space:
            raise PlaygroundError(f"channel {channel} is not in workspace {space.team_id}")

    async def send_text(
        self, team_id: str, user_id: str, channel: str, text: str, thread_ts: str | None
    ) -> JSONDict:
        """The composer: a slash command, or a message (an @mention of the bot becomes ``app_mention``)."""
        actor = who(team_id, user_id)
        self._check_channel(actor.space, channel)
        text = text.strip()
        if not text:
            return {"ok": True}
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            if command not in KNOWN_COMMANDS:
                body = {"text": f"`{command}` is not a valid command. In the playground only `/lead` is."}
                self.slack.post_ephemeral(channel=channel, user=user_id, body=body, thread_ts=thread_ts)
                return {"ok": True}
            return await self.command(
                actor, channel, command, escape_text(actor.space, rest.strip()), thread_ts
            )
        escaped = escape_text(actor.space, text).replace("@lma-bot", f"<@{self.slack.bot_user_id}>")
        message = self.slack.post_as_person(channel=channel, user=user_id, text=escaped, thread_ts=thread_ts)
        if f"<@{self.slack.bot_user_id}>" in escaped and not channel.startswith("D"):
            event = {
                "type": "app_mention",
                "user": user_id,
                "text": escaped,
                "ts": message["ts"],
                "channel": channel,
                "event_ts": message["ts"],
            }
            if thread_ts:
                event["thread_ts"] = thread_ts
            await self._event(actor, event)
        return {"ok": True}

    async def command(
        self, actor: Who, channel: str, command: str, text: str, thread_ts: str | None
    ) -> JSONDict:
        hook = self.slack.hook_url(
            HookContext(channel=channel, user=actor.person.slack_id, thread_ts=thread_ts)
        )
        trigger = self.slack.trigger_for(actor.person.slack_id, new_trigger_id())
        channel_name = self._channel_name(actor.space, channel)
        status, body = await self.client.command(
            text,
            command=command,
            team_id=actor.space.team_id,
            user_id=actor.person.slack_id,
            user_name=actor.person.handle,
            channel_id=channel,
            channel_name=channel_name,
            response_url=hook,
            trigger_id=trigger,
        )
        self._apply_ack(actor, channel, status, body, command=command, thread_ts=thread_ts)
        return {"ok": status == 200, "status": status}

    def _channel_name(self, space: Workspace, channel: str) -> str:
        if channel.startswith("D"):
            return "directmessage"
        return next((c.name for c in space.channels if c.id == channel), channel.lower())

    def _apply_ack(
        self, actor: Who, channel: str, status: int, body: str, *, command: str, thread_ts: str | None
    ) -> None:
        user = actor.person.slack_id
        if status != 200:
            error = "dispatch_failed" if status < 500 else "http_service_error"
            text = f'{command} failed with the error "{error}" (HTTP {status})'
            self.slack.post_ephemeral(channel=channel, user=user, body={"text": text}, thread_ts=thread_ts)
            return
        if not body.strip():
            return
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"text": body}
        if not isinstance(answer, dict) or not (answer.get("text") or answer.get("blocks")):
            return
        if answer.get("response_type") == "in_channel":
            self.slack.post_as_bot(channel=channel, body=answer, thread_ts=thread_ts)
        else:
            self.slack.post_ephemeral(channel=channel, user=user, body=answer, thread_ts=thread_ts)

    async def action(self, team_id: str, user_id: str, container: JSONDict, action: JSONDict) -> JSONDict:
        """A click or a choice in a message, an ephemeral message, a modal or the App Home."""
        actor = who(team_id, user_id)
        action = {**action, "action_ts": now_ts()}
        payload: JSONDict = {
            "type": "block_actions",
            "user": _user(actor),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.slack.trigger_for(user_id, new_trigger_id()),
            "team": {"id": actor.space.team_id, "domain": actor.space.domain},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        kind = container.get("type")
        if kind in ("view", "home"):
            view_id = str(container.get("view_id") or "")
            view = self.slack.views.get(view_id)
            if view is None:
                raise PlaygroundError(f"no view {view_id}")
            state = {"values": container.get("values") or {}}
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = {**view, "state": state}
            payload["state"] = state
        else:
            channel = str(container.get("channel") or "")
            self._check_channel(actor.space, channel)
            ts = str(container.get("ts") or "")
            ephemeral = ts in self.slack.ephemerals
            message = self.slack.ephemerals.get(ts) if ephemeral else self.slack.messages.get((channel, ts))
            if message is None:
                raise PlaygroundError(f"no message {ts} in {channel}")
            thread_ts = message.get("thread_ts")
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            }
            if thread_ts:
                payload["container"]["thread_ts"] = thread_ts
            payload["channel"] = {"id": channel, "name": self._channel_name(actor.space, channel)}
            if not ephemeral:  # Slack sends no message for a click in an ephemeral one
                shown = {k: v for k, v in message.items() if k not in ("channel", "for_user")}
                payload["message"] = shown
            payload["state"] = {"values": container.get("values") or {}}
            context = HookContext(
                channel=channel, user=user_id, message_ts=ts, thread_ts=thread_ts, ephemeral=ephemeral
            )
            payload["response_url"] = self.slack.hook_url(context)
        payload["actions"] = [action]
        status, _body = await self.client.action(payload)
        return {"ok": status == 200, "status": status}

    async def submit(self, team_id: str, user_id: str, view_id: str, values: JSONDict) -> JSONDict:
        """A modal's submit button: ``view_submission``; the ack decides (errors, update, push, clear, close)."""
        actor = who(team_id, user_id)
        view = self.slack.views.get(view_id)
        if view is None:
            raise PlaygroundError(f"no view {view_id}")
        payload = view_submission(
            str(view.get("callback_id") or ""),
            values,
            team_id=actor.space.team_id,
            user_id=user_id,
            user_name=actor.person.handle,
            view_id=view_id,
        )
        payload["team"] = {"id": actor.space.team_id, "domain": actor.space.domain}
        payload["view"] = {
            **view,
            "team_id": actor.space.team_id,
            "state": {"values": values},
            "bot_id": BOT_ID,
        }
        payload["trigger_id"] = self.slack.trigger_for(user_id, str(payload["trigger_id"]))
        status, body = await self.client.view(payload)
        if status != 200:
            return {"ok": False, "status": status, "error": "We had some trouble connecting. Try again?"}
        answer: Any = {}
        if body.strip():
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {}
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action == "errors":
            return {"ok": False, "status": status, "errors": answer.get("errors") or {}}
        if action == "update" and isinstance(answer.get("view"), dict):
            self.slack.replace_modal(view_id, answer["view"])
        elif action == "push" and isinstance(answer.get("view"), dict):
            self.slack.push_modal(user_id, answer["view"])
        else:
            self.slack.close_modal(user_id, view_id, all_views=action == "clear")
        return {"ok": True, "status": status}

    async def close(self, team_id: str, user_id: str, view_id: str) -> JSONDict:
        """The modal's close button; ``view_closed`` goes to the bot only when the view asked for it."""
        actor = who(team_id, user_id)
        view = self.slack.views.get(view_id)
        self.slack.close_modal(user_id, view_id)
        if view is None or not view.get("notify_on_close"):
            return {"ok": True}
        payload = {
            "type": "view_closed",
            "team": {"id": actor.space.team_id, "domain": actor.space.domain},
            "user": _user(actor),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "view": view,
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        status, _body = await self.client.view(payload)
        return {"ok": status == 200, "status": status}

    async def open_home(self, team_id: str, user_id: str) -> JSONDict:
        """The App Home tab was opened: ``app_home_opened`` (Events API)."""
        actor = who(team_id, user_id)
        event: JSONDict = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": actor.person.dm_channel,
            "tab": "home",
            "event_ts": now_ts(),
        }
        home = self.slack.home_view(user_id)
        if home is not None:
            event["view"] = home
        status = await self._event(actor, event)
        return {"ok": status == 200, "status": status}

    async def _event(self, actor: Who, event: JSONDict) -> int:
        envelope = event_callback(
            event,
            team_id=actor.space.team_id,
            event_id=f"Ev{int(time.time())}{next(self._event_seq):06d}",
            bot_user_id=self.slack.bot_user_id,
        )
        status, _body = await self.client.event(envelope)
        return status


def _user(actor: Who) -> JSONDict:
    return {
        "id": actor.person.slack_id,
        "username": actor.person.handle,
        "name": actor.person.handle,
        "team_id": actor.space.team_id,
    }
