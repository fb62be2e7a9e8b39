"""The playground's Slack: :class:`~lma_bot.playground.slack_api.FakeSlack` plus what a person sees.

The fake already stores messages and views; this adds ephemeral messages, messages people type, what
``response_url`` posts do to a conversation (new ephemeral or in-channel message, replace or delete the
original), modal stacks per person and a version number the page polls.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from lma_bot.playground import directory
from lma_bot.playground.slack_api import Call, FakeSlack, JSONDict, _read_params


@dataclass(frozen=True)
class HookContext:
    """Where a ``response_url`` answers: the conversation, the person, and the message clicked (if any)."""

    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None
    ephemeral: bool = False


class PlaygroundSlack(FakeSlack):
    def __init__(self) -> None:
        super().__init__(team_id=directory.ACME.team_id, team_name=directory.ACME.name)
        self.version = 0
        self.ephemerals: dict[str, JSONDict] = {}  # ts -> message with "channel" and "for_user"
        self.hooks: dict[str, HookContext] = {}  # response_url path -> context
        self.triggers: dict[str, str] = {}  # trigger_id -> user id
        self.modals: dict[str, list[str]] = {}  # user id -> view ids, top last
        for space in directory.WORKSPACES:
            for channel in space.channels:
                self.add_channel(channel.id, name=channel.name)
            for person in space.people:
                self.add_user(
                    person.slack_id,
                    name=person.handle,
                    real_name=person.real_name,
                    email=person.email,
                    tz=person.timezone,
                    team_id=space.team_id,
                    is_admin=person.role == "admin",
                )

    # ------------------------------------------------------------------------------------------ helpers

    def _next_ts(self) -> str:
        """Real times (the page shows them), still strictly increasing."""
        self._last_ts = max(time.time(), getattr(self, "_last_ts", 0.0) + 0.0001)
        return f"{self._last_ts:.6f}"

    def _notify(self) -> None:
        self.version += 1
        super()._notify()

    def hook_url(self, context: HookContext) -> str:
        url = self.response_url("pg")
        self.hooks[urlsplit(url).path] = context
        return url

    def trigger_for(self, user_id: str, trigger_id: str) -> str:
        self.triggers[trigger_id] = user_id
        return trigger_id

    def home_view(self, user_id: str) -> JSONDict | None:
        view_id = self._home_views.get(user_id)
        return self.views.get(view_id) if view_id else None

    def top_modal(self, user_id: str) -> JSONDict | None:
        stack = self.modals.get(user_id) or []
        return self.views.get(stack[-1]) if stack else None

    def close_modal(self, user_id: str, view_id: str, *, all_views: bool = False) -> None:
        stack = self.modals.get(user_id) or []
        if all_views:
            stack.clear()
        elif view_id in stack:
            del stack[stack.index(view_id) :]
        self._notify()

    def replace_modal(self, view_id: str, view: JSONDict) -> None:
        previous = self.views.get(view_id)
        self._view(view, view_id=view_id, previous=previous)
        self._notify()

    def push_modal(self, user_id: str, view: JSONDict) -> None:
        view_id = self._next_id("V")
        self._view(view, view_id=view_id)
        self.modals.setdefault(user_id, []).append(view_id)
        self._notify()

    def post_as_person(self, *, channel: str, user: str, text: str, thread_ts: str | None) -> JSONDict:
        ts = self._next_ts()
        message: JSONDict = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages[(channel, ts)] = message
        self._notify()
        return message

    def post_ephemeral(
        self, *, channel: str, user: str, body: JSONDict, thread_ts: str | None = None
    ) -> None:
        ts = self._next_ts()
        self.ephemerals[ts] = {
            "type": "message",
            "ts": ts,
            "channel": channel,
            "for_user": user,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": body.get("text") or "",
            "blocks": body.get("blocks") or [],
            "thread_ts": thread_ts,
        }
        self._notify()

    def post_as_bot(self, *, channel: str, body: JSONDict, thread_ts: str | None = None) -> None:
        params = dict(body)
        if thread_ts:
            params["thread_ts"] = thread_ts
        ts = self._next_ts()
        self.messages[(channel, ts)] = self._message(params, ts)
        self._notify()

    def conversation(self, channel: str, user: str) -> list[JSONDict]:
        """The channel's messages as ``user`` sees them (their ephemerals included), oldest first."""
        found = [dict(m, channel=cid) for (cid, _ts), m in self.messages.items() if cid == channel]
        found += [
            dict(m) for m in self.ephemerals.values() if m["channel"] == channel and m["for_user"] == user
        ]
        return sorted(found, key=lambda m: float(m["ts"]))

    # ---------------------------------------------------------------------------------- Web API hooks

    def _chat_post_ephemeral(self, call: Call) -> JSONDict:
        answer = super()._chat_post_ephemeral(call)
        if answer.get("ok"):
            params = call.params
            ts = str(answer["message_ts"])
            self.ephemerals[ts] = {
                "type": "message",
                "ts": ts,
                "channel": self._resolve_channel(str(params["channel"])),
                "for_user": str(params["user"]),
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "text": params.get("text") or "",
                "blocks": params.get("blocks") or [],
                "thread_ts": params.get("thread_ts"),
            }
        return answer

    def _views_open(self, call: Call) -> JSONDict:
        answer = super()._views_open(call)
        if answer.get("ok"):
            user = self.triggers.get(str(call.params.get("trigger_id") or ""))
            if user is not None:
                stack = self.modals.setdefault(user, [])
                if call.method == "views.open":
                    stack.clear()
                stack.append(str(answer["view"]["id"]))
        return answer

    async def _handle_hook(self, request: web.Request) -> web.Response:
        response = await super()._handle_hook(request)
        context = self.hooks.get(request.path)
        if context is not None and response.status == 200:
            with contextlib.suppress(ValueError, KeyError):
                self._apply_response(context, await _read_params(request))
            self._notify()
        return response

    def _apply_response(self, context: HookContext, body: JSONDict) -> None:
        """What Slack does with a ``response_url`` post."""
        original = context.message_ts
        if body.get("delete_original") and original:
            self.messages.pop((context.channel, original), None)
            self.ephemerals.pop(original, None)
            return
        if body.get("replace_original") and original:
            if original in self.ephemerals:
                self.ephemerals[original].update(
                    {"text": body.get("text") or "", "blocks": body.get("blocks") or []}
                )
                return
            if (context.channel, original) in self.messages:
                updated = self._message(body, original)
                kept = self.messages[(context.channel, original)].get("thread_ts")
                if kept:
                    updated["thread_ts"] = kept
                self.messages[(context.channel, original)] = updated
                return
        thread = body.get("thread_ts") or context.thread_ts
        if body.get("response_type") == "in_channel":
            self.post_as_bot(channel=context.channel, body=body, thread_ts=thread)
        else:
            self.post_ephemeral(channel=context.channel, user=context.user, body=body, thread_ts=thread)


def now_ts() -> str:
    return f"{time.time():.6f}"
