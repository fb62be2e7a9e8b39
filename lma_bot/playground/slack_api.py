"""A fake Slack Web API (plus ``response_url`` and file-upload hosts) served by aiohttp on 127.0.0.1.

Point the bot's client at it::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await client.chat_postMessage(channel="C0GENERAL", text="hi")
        [call] = await slack.wait_for("chat.postMessage")
        assert call.params["text"] == "hi" and call.token == "xoxb-test"

Every request is recorded (``calls``, ``response_posts``, ``uploads``) before it is answered. Answers
follow the shapes in Slack's method reference: ``ok``, ids with Slack's prefixes (``C``/``D``/``U``/
``V``/``F``), message ``ts`` strings that increase (``"1700000000.000100"``, ``"1700000000.000200"``,
...). Methods it doesn't know answer ``{"ok": true}``; ``stub()`` overrides any method.

Behaviour knobs (``method`` may be ``"*"`` for any Web API method, or ``"response_url"`` for posts to
``response_url()`` URLs): ``delay``, ``fail`` (``ok: false`` with an error), ``rate_limit`` (HTTP 429 +
``Retry-After``), ``http_error`` (e.g. 500/503). Knobs set for the method itself come before ``"*"``
ones; among those, counted knobs are used up in the order they were set.
``pace_channels`` makes ``chat.postMessage`` enforce Slack's per-channel limit (about one message per second
per channel): a post to a channel less than ``seconds`` after the last one it accepted there answers 429 +
``Retry-After``.
Like Slack, a Web API call without a token answers ``not_authed``; ``reject_token`` makes one token
answer ``invalid_auth`` (or another error).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web

from lma_bot.playground.slack_requests import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    CHANNEL_ID,
    CHANNEL_NAME,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    USER_ID,
)

JSONDict = dict[str, Any]
Responder = Callable[["Call"], JSONDict]

# Parameters that Slack accepts as JSON-encoded strings in form posts; recorded decoded.
JSON_PARAMS = frozenset({"blocks", "attachments", "view", "files", "metadata", "unfurls", "user_auth_blocks"})
# Methods Slack answers without a bearer token (they authenticate with client id/secret).
NO_TOKEN_METHODS = frozenset({"oauth.v2.access", "oauth.access", "oauth.v2.exchange", "api.test"})
RESPONSE_URL = "response_url"
INVALID_JSON = "_invalid_json"  # params key holding a JSON body that did not parse (answered invalid_json)
DEFAULT_SCOPES = (
    "chat:write,commands,im:write,users:read,users:read.email,channels:read,files:write,team:read"
)

_HTTP_ERRORS = {500: "fatal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}
_TZ_LABELS = {
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "UTC": "Coordinated Universal Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
}


@dataclass
class Call:
    """One request the fake received. ``status``/``response`` are filled in once it is answered."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    http_method: str = "POST"
    path: str = ""
    status: int | None = None
    response: Any = None

    @property
    def token(self) -> str | None:
        """The bearer token (``Authorization: Bearer ...``) or a ``token`` parameter, as Slack accepts both."""
        auth = self.headers.get("Authorization") or self.headers.get("authorization") or ""
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        token = self.params.get("token")
        return token if isinstance(token, str) else None

    @property
    def ok(self) -> bool | None:
        """The ``ok`` the fake answered (``None`` while pending, or for non-JSON answers)."""
        return self.response.get("ok") if isinstance(self.response, dict) else None


@dataclass
class ResponsePost:
    """A post to a ``response_url()`` URL (what the bot's ``respond()`` sends)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0
    status: int | None = None


@dataclass
class _Rule:
    kind: Literal["fail", "rate_limit", "http_error"]
    method: str
    remaining: int | None  # None = forever
    error: str = ""
    status: int = 200
    retry_after: int = 0


def _decode_json_params(params: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string, then the body (JSON, urlencoded or multipart) on top of it."""
    params: dict[str, Any] = {k: request.query.get(k) for k in request.query}
    if request.body_exists:
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = {INVALID_JSON: raw.decode(errors="replace")}
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key in form:
                value = form.get(key)
                if isinstance(value, web.FileField):
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "content": value.file.read(),
                    }
                else:
                    params[key] = value
    return _decode_json_params(params)


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", headers=headers)


class FakeSlack:
    """Fake Slack Web API on ``127.0.0.1:<free port>``; see the module docstring."""

    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        team_name: str = TEAM_NAME,
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        bot_name: str = BOT_NAME,
        app_id: str = APP_ID,
        scopes: str = DEFAULT_SCOPES,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.scopes = scopes

        self.calls: list[Call] = []
        self.response_posts: list[ResponsePost] = []
        self.uploads: dict[str, bytes] = {}  # file id -> bytes posted to its upload_url
        # Directory data; kept across reset().
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # bot token -> auth.test fields (team_id, user_id, ...)

        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.views: dict[str, dict[str, Any]] = {}
        self._rules: list[_Rule] = []
        self._delays: dict[str, float] = {}
        self._pace: tuple[float, int | None] | None = None  # (seconds, Retry-After) per channel
        self._last_post: dict[str, float] = {}  # channel -> arrival (monotonic) of the last accepted post
        self._stubs: dict[str, Responder] = {}
        self._rejected: dict[str, str] = {}
        self._open_dms: set[str] = set()
        self._home_views: dict[str, str] = {}  # user id -> App Home view id
        self._pending_files: dict[str, dict[str, Any]] = {}
        self._upload_paths: dict[str, str] = {}  # upload path token -> file id
        self._seq = itertools.count(1)
        self._hook_seq = itertools.count(1)
        self._changed = asyncio.Event()

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Responder] = {
            "api.test": lambda c: {"ok": True, "args": dict(c.params)},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.list": self._users_list,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "oauth.v2.access": self._oauth_v2_access,
            "team.info": self._team_info,
        }
        self.add_user(bot_user_id, name=bot_name, real_name=bot_name, is_bot=True, team_id=team_id)

    # ----------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/hooks/{name:.+}", self._handle_hook)
        app.router.add_post("/upload/v1/{key}", self._handle_upload)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient`` (trailing slash: slack_sdk appends method names)."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "cmd") -> str:
        """A fresh ``response_url`` on this server; posts to it land in ``response_posts``."""
        return f"{self.base_url}/hooks/{name}-{next(self._hook_seq)}"

    # -------------------------------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        if method == RESPONSE_URL:
            return [self._post_as_call(p) for p in self.response_posts]
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the tests' API: a deadline per wait
    ) -> list[Call]:
        """All calls to ``method`` once there are at least ``count``; ``AssertionError`` after ``timeout``.

        ``method="response_url"`` waits on ``response_posts`` (returned as ``Call(method="response_url",
        params=<body>, path=<path>)``; ``wait_for_response_posts`` returns the ``ResponsePost`` objects).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            found = self.calls_to(method)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timeout_message(method, count, len(found), timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for_response_posts(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ResponsePost]:
        await self.wait_for(RESPONSE_URL, count, timeout)
        return list(self.response_posts)

    def summary(self, limit: int = 40) -> str:
        """Human-readable list of what was recorded (used in ``wait_for`` failures)."""
        lines = [f"Web API calls ({len(self.calls)}):"]
        shown = self.calls[-limit:]
        if len(self.calls) > len(shown):
            lines.append(f"  ... {len(self.calls) - len(shown)} earlier call(s) not shown")
        for call in shown:
            lines.append(f"  {call.http_method} {call.method} {_brief(call.params)} -> {_outcome(call)}")
        lines.append(f"response_url posts ({len(self.response_posts)}):")
        for post in self.response_posts[-limit:]:
            lines.append(f"  {post.path} {_brief(post.body)} -> {post.status}")
        return "\n".join(lines)

    def reset(self) -> None:
        """Forget recorded traffic, messages, views and every knob/stub; keep users, channels and tokens."""
        self.calls.clear()
        self.response_posts.clear()
        self.uploads.clear()
        self.messages.clear()
        self.views.clear()
        self._rules.clear()
        self._delays.clear()
        self._stubs.clear()
        self._rejected.clear()
        self._pace = None
        self._last_post.clear()
        self._open_dms.clear()
        self._home_views.clear()
        self._pending_files.clear()
        self._upload_paths.clear()
        self._notify()

    # ------------------------------------------------------------------------------------------- knobs

    def delay(self, method: str, seconds: float) -> None:
        """Hold every answer to ``method`` for ``seconds`` (0 removes the delay)."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def fail(self, method: str, error: str, *, times: int | None = None) -> None:
        """Answer ``{"ok": false, "error": error}`` (HTTP 200) ``times`` times (``None`` = until reset)."""
        self._rules.append(_Rule("fail", method, times, error=error))

    def rate_limit(self, method: str, retry_after: int, *, times: int = 1) -> None:
        """Answer HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After: retry_after``."""
        self._rules.append(
            _Rule("rate_limit", method, times, error="ratelimited", status=429, retry_after=retry_after)
        )

    def http_error(self, method: str, status: int, *, times: int = 1) -> None:
        """Answer HTTP ``status`` (e.g. 500, 503) with an ``ok: false`` JSON body."""
        error = _HTTP_ERRORS.get(status, f"http_{status}")
        self._rules.append(_Rule("http_error", method, times, error=error, status=status))

    def pace_channels(self, seconds: float = 1.0, *, retry_after: int | None = None) -> None:
        """Per-channel pacing of ``chat.postMessage``, as Slack limits it: a post arriving less than ``seconds``
        after the last accepted post to the same channel answers HTTP 429 ``ratelimited`` with ``Retry-After:
        retry_after`` (default: the rest of the interval, rounded up to whole seconds, at least 1). Posts to
        a user id count for that user's DM. ``seconds <= 0`` turns pacing off. Rejected posts are recorded in
        ``calls`` (status 429) but not stored as messages."""
        self._pace = (seconds, retry_after) if seconds > 0 else None
        self._last_post.clear()

    def stub(self, method: str, response: JSONDict | Responder) -> None:
        """Answer ``method`` with ``response`` (a dict, or a function of the ``Call``) until reset."""
        if callable(response):
            self._stubs[method] = response
        else:
            fixed = dict(response)
            self._stubs[method] = lambda _call: dict(fixed)

    def reject_token(self, token: str, error: str = "invalid_auth") -> None:
        """Calls made with ``token`` answer ``{"ok": false, "error": error}`` (e.g. ``token_revoked``)."""
        self._rejected[token] = error

    # ---------------------------------------------------------------------------------- directory data

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "America/New_York",
        deleted: bool = False,
        is_bot: bool = False,
        team_id: str = TEAM_ID,
        is_admin: bool = False,
    ) -> dict[str, Any]:
        """Add (or replace) a user; returns the ``users.info`` ``user`` object."""
        real = real_name if real_name is not None else name
        first, _, last = real.partition(" ")
        now = datetime.now(ZoneInfo(tz))
        offset = now.utcoffset()
        abbrev = now.tzname() or tz
        avatar = f"https://secure.gravatar.com/avatar/{user_id.lower()}.jpg?s=%d&d=mm"
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real,
            "real_name_normalized": real,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": f"g{user_id.lower()[:11]}",
            "first_name": first,
            "last_name": last,
            "image_24": avatar % 24,
            "image_32": avatar % 32,
            "image_48": avatar % 48,
            "image_72": avatar % 72,
            "image_192": avatar % 192,
            "image_512": avatar % 512,
            "status_text_canonical": "",
            "team": team_id,
        }
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile.update(
                {
                    "bot_id": self.bot_id if user_id == self.bot_user_id else f"B{user_id[1:]}",
                    "api_app_id": self.app_id if user_id == self.bot_user_id else "",
                    "always_active": True,
                }
            )
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": tz,
            "tz_label": _TZ_LABELS.get(abbrev, abbrev),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
        }
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str,
        is_private: bool = False,
        is_member: bool = True,
        topic: str = "",
        purpose: str = "",
    ) -> dict[str, Any]:
        """Add (or replace) a channel; returns the ``conversations.info`` ``channel`` object."""
        channel = self._public_channel(channel_id, name)
        channel.update({"is_private": is_private, "is_group": False, "is_member": is_member})
        channel["topic"]["value"] = topic
        channel["purpose"]["value"] = purpose
        self.channels[channel_id] = channel
        return channel

    # --------------------------------------------------------------------------------------- internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + next(self._seq) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._seq):08d}"

    def _take_rule(self, method: str) -> _Rule | None:
        """The first rule set for ``method`` itself, else the first ``"*"`` rule; counts one use of it."""
        rule = next((r for r in self._rules if r.method == method), None)
        if rule is None and method != RESPONSE_URL:
            rule = next((r for r in self._rules if r.method == "*"), None)
        if rule is not None and rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)
        return rule

    def _delay_for(self, method: str) -> float:
        if method in self._delays:
            return self._delays[method]
        return self._delays.get("*", 0.0) if method != RESPONSE_URL else 0.0

    @staticmethod
    def _post_as_call(post: ResponsePost) -> Call:
        return Call(RESPONSE_URL, post.body, post.headers, post.at, path=post.path, status=post.status)

    def _timeout_message(self, method: str, count: int, seen: int, timeout: float) -> str:
        return (
            f"FakeSlack: timed out after {timeout:g}s waiting for {count} call(s) to {method!r}; "
            f"saw {seen}.\n{self.summary()}"
        )

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params, dict(request.headers), time.monotonic(), request.method, request.path)
        self.calls.append(call)
        self._notify()
        if delay := self._delay_for(method):
            await asyncio.sleep(delay)
        status, body, headers = self._answer(call)
        call.status, call.response = status, body
        self._notify()
        headers["x-oauth-scopes"] = self.scopes
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, call: Call) -> tuple[int, JSONDict, dict[str, str]]:
        rule = self._take_rule(call.method)
        if rule is not None:
            headers = {"Retry-After": str(rule.retry_after)} if rule.kind == "rate_limit" else {}
            return rule.status, {"ok": False, "error": rule.error}, headers
        if INVALID_JSON in call.params:
            return 200, {"ok": False, "error": "invalid_json"}, {}
        token = call.token
        if call.method not in NO_TOKEN_METHODS:
            if not token:
                return 200, {"ok": False, "error": "not_authed"}, {}
            if token in self._rejected:
                return 200, {"ok": False, "error": self._rejected[token]}, {}
        paced_channel = None
        if self._pace is not None and call.method == "chat.postMessage" and call.params.get("channel"):
            paced_channel = self._resolve_channel(str(call.params["channel"]))
            seconds, retry_after = self._pace
            last = self._last_post.get(paced_channel)
            if last is not None and call.at - last < seconds:
                wait = (
                    retry_after if retry_after is not None else max(1, math.ceil(seconds - (call.at - last)))
                )
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)}
        responder = self._stubs.get(call.method) or self._handlers.get(call.method)
        body = responder(call) if responder else {"ok": True}
        if paced_channel is not None and body.get("ok"):
            self._last_post[paced_channel] = call.at
        return 200, body, {}

    async def _handle_hook(self, request: web.Request) -> web.Response:
        body = await _read_params(request)
        post = ResponsePost(request.path, body, dict(request.headers), time.monotonic())
        self.response_posts.append(post)
        self._notify()
        if delay := self._delay_for(RESPONSE_URL):
            await asyncio.sleep(delay)
        response = _text(200, "ok")
        rule = self._take_rule(RESPONSE_URL)
        if rule is not None and rule.kind == "fail":
            response = _text(404 if rule.error in ("expired_url", "used_url") else 400, rule.error)
        elif rule is not None and rule.kind == "rate_limit":
            response = _text(429, "rate_limited", {"Retry-After": str(rule.retry_after)})
        elif rule is not None:
            response = _text(rule.status, rule.error)
        post.status = response.status
        self._notify()
        return response

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = self._upload_paths.get(request.match_info["key"])
        if file_id is None:
            return _text(404, "not_found")
        data = await request.read()
        self.uploads[file_id] = data
        self._notify()
        return _text(200, f"OK - {len(data)}")

    # ---------------------------------------------------------------------------------------- methods

    def _auth_test(self, call: Call) -> JSONDict:
        token = call.token or ""
        response: JSONDict = {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
        if token.startswith("xoxp-"):
            rep = self.users.get(USER_ID, {})
            response.update({"user": rep.get("name", "rep"), "user_id": USER_ID})
            del response["bot_id"]
        response.update(self.tokens.get(token, {}))
        return response

    def _resolve_channel(self, channel: str) -> str:
        if channel.startswith(("U", "W")):  # posting to a user id opens/uses the DM
            return "D" + channel[1:]
        if channel.startswith("#"):
            name = channel[1:]
            for cid, info in self.channels.items():
                if info.get("name") == name:
                    return cid
            return CHANNEL_ID if name == CHANNEL_NAME else "C" + name.upper().replace("-", "")
        return channel

    def _message(self, params: dict[str, Any], ts: str) -> JSONDict:
        blocks = params.get("blocks")
        message: JSONDict = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": params.get("text") or "",
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
                "deleted": False,
                "updated": 1700000000,
                "team_id": self.team_id,
            },
        }
        if blocks:
            message["blocks"] = blocks
        for key in ("attachments", "thread_ts", "metadata"):
            if params.get(key):
                message[key] = params[key]
        return message

    def _chat_post_message(self, call: Call) -> JSONDict:
        params = call.params
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        channel = self._resolve_channel(str(params["channel"]))
        ts = self._next_ts()
        message = self._message(params, ts)
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_post_ephemeral(self, call: Call) -> JSONDict:
        params = call.params
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, call: Call) -> JSONDict:
        params = call.params
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found" if channel else "channel_not_found"}
        message = self._message(params, ts)
        message.pop("ts")
        self.messages[(channel, ts)] = {**self.messages.get((channel, ts), {}), **message, "ts": ts}
        return {"ok": True, "channel": channel, "ts": ts, "text": params.get("text", ""), "message": message}

    def _chat_delete(self, call: Call) -> JSONDict:
        channel, ts = str(call.params.get("channel", "")), str(call.params.get("ts", ""))
        self.messages.pop((channel, ts), None)
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, call: Call) -> JSONDict:
        channel, ts = str(call.params.get("channel", "")), str(call.params.get("message_ts", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        permalink = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _conversations_open(self, call: Call) -> JSONDict:
        users = [u for u in str(call.params.get("users") or "").split(",") if u]
        if call.params.get("channel"):
            channel_id = str(call.params["channel"])
        elif len(users) == 1:
            channel_id = "D" + users[0][1:]
        elif users:
            channel_id = "G" + "".join(u[1:4] for u in sorted(users)).upper()
        else:
            return {"ok": False, "error": "users_list_not_supplied"}
        response: JSONDict = {"ok": True}
        if channel_id in self._open_dms:
            response.update({"no_op": True, "already_open": True})
        self._open_dms.add(channel_id)
        channel = self._channel_object(channel_id) if call.params.get("return_im") else {"id": channel_id}
        response["channel"] = channel
        return response

    def _public_channel(self, channel_id: str, name: str) -> JSONDict:
        return {
            "id": channel_id,
            "name": name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "created": 1700000000,
            "is_archived": False,
            "is_general": name == CHANNEL_NAME,
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": 1700000000000,
            "parent_conversation": None,
            "creator": USER_ID,
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": True,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }

    def _channel_object(self, channel_id: str) -> JSONDict:
        if channel_id in self.channels:
            return dict(self.channels[channel_id])
        if channel_id.startswith("D"):
            return {
                "id": channel_id,
                "created": 1700000000,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": self.team_id,
                "updated": 1700000000000,
                "user": "U" + channel_id[1:],
                "is_user_deleted": False,
                "priority": 0,
            }
        name = CHANNEL_NAME if channel_id == CHANNEL_ID else channel_id[1:].lower()
        channel = self._public_channel(channel_id, name)
        if channel_id.startswith("G"):
            channel.update({"is_channel": False, "is_group": True, "is_private": True})
        return channel

    def _conversations_history(self, call: Call) -> JSONDict:
        """Messages of a channel, newest first, after ``oldest``; ``metadata`` only with include_all_metadata."""
        channel = self._resolve_channel(str(call.params.get("channel") or ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(call.params.get("oldest") or 0)
        limit = int(call.params.get("limit") or 100)
        with_metadata = str(call.params.get("include_all_metadata") or "").lower() in ("1", "true")
        found = sorted(
            (m for (cid, ts), m in self.messages.items() if cid == channel and float(ts) > oldest),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        messages = []
        for message in found[:limit]:
            shown = dict(message)
            if not with_metadata:
                shown.pop("metadata", None)
            messages.append(shown)
        return {"ok": True, "messages": messages, "has_more": len(found) > limit}

    def _conversations_info(self, call: Call) -> JSONDict:
        channel_id = str(call.params.get("channel") or "")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._channel_object(channel_id)}

    def _users_info(self, call: Call) -> JSONDict:
        user = self.users.get(str(call.params.get("user") or ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _users_lookup_by_email(self, call: Call) -> JSONDict:
        email = str(call.params.get("email") or "").lower()
        for user in self.users.values():
            if str(user["profile"].get("email", "")).lower() == email and email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _users_list(self, call: Call) -> JSONDict:
        return {
            "ok": True,
            "members": list(self.users.values()),
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": ""},
        }

    def _view(self, view: Any, *, view_id: str, previous: JSONDict | None = None) -> JSONDict:
        given: JSONDict = view if isinstance(view, dict) else {}
        result: JSONDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "hash": f"{1700000000 + next(self._seq)}.{secrets.token_hex(4)}",
            "title": None,
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "app_id": self.app_id,
            "external_id": "",
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        result.update({k: v for k, v in given.items() if k not in ("id", "hash", "state")})
        result["state"] = {"values": {}}
        self.views[view_id] = result
        return result

    def _views_open(self, call: Call) -> JSONDict:
        if "view" not in call.params:
            return {"ok": False, "error": "invalid_arguments"}
        if not (call.params.get("trigger_id") or call.params.get("interactivity_pointer")):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": self._view(call.params["view"], view_id=self._next_id("V"))}

    def _views_update(self, call: Call) -> JSONDict:
        params = call.params
        if "view" not in params:
            return {"ok": False, "error": "invalid_arguments"}
        view_id = str(params.get("view_id") or "")
        if not view_id and params.get("external_id"):
            external = params["external_id"]
            view_id = next((vid for vid, v in self.views.items() if v.get("external_id") == external), "")
            if not view_id:
                return {"ok": False, "error": "not_found"}
        if not view_id:
            return {"ok": False, "error": "invalid_arguments"}
        previous = self.views.get(view_id)
        if previous is not None and params.get("hash") and params["hash"] != previous["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        return {"ok": True, "view": self._view(params["view"], view_id=view_id, previous=previous)}

    def _views_publish(self, call: Call) -> JSONDict:
        params = call.params
        if not params.get("user_id") or "view" not in params:
            return {"ok": False, "error": "invalid_arguments"}
        user_id = str(params["user_id"])
        view_id = self._home_views.get(user_id) or self._next_id("V")
        self._home_views[user_id] = view_id
        return {"ok": True, "view": self._view(params["view"], view_id=view_id)}

    def _files_get_upload_url(self, call: Call) -> JSONDict:
        filename, length = call.params.get("filename"), call.params.get("length")
        if not filename or length in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        key = secrets.token_urlsafe(12)
        self._upload_paths[key] = file_id
        self._pending_files[file_id] = {"name": str(filename), "length": int(length)}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/v1/{key}", "file_id": file_id}

    def _files_complete_upload(self, call: Call) -> JSONDict:
        files = call.params.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel = call.params.get("channel_id")
        result = []
        for item in files:
            file_id = str(item.get("id", ""))
            pending = self._pending_files.get(file_id)
            if pending is None:
                return {"ok": False, "error": "file_not_found"}
            name = pending["name"]
            created = int(time.time())
            result.append(
                {
                    "id": file_id,
                    "created": created,
                    "timestamp": created,
                    "name": name,
                    "title": item.get("title") or name,
                    "mimetype": "",
                    "filetype": name.rsplit(".", 1)[-1] if "." in name else "",
                    "user": self.bot_user_id,
                    "user_team": self.team_id,
                    "size": len(self.uploads.get(file_id, b"")),
                    "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{file_id}/{name}",
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{file_id}/{name}",
                    "channels": [channel] if channel else [],
                    "is_public": bool(channel and str(channel).startswith("C")),
                }
            )
        return {"ok": True, "files": result}

    def _oauth_v2_access(self, call: Call) -> JSONDict:
        auth = call.headers.get("Authorization", "")
        client_id = call.params.get("client_id")
        if auth.startswith("Basic "):
            try:
                client_id = base64.b64decode(auth[len("Basic ") :], validate=True).decode().partition(":")[0]
            except ValueError:
                return {"ok": False, "error": "invalid_client_id"}
        if not client_id:
            return {"ok": False, "error": "invalid_client_id"}
        n = next(self._seq)
        if call.params.get("grant_type") == "refresh_token":
            token = f"xoxb-{self.team_id}-{n}-refreshed{secrets.token_hex(8)}"
            self.tokens[token] = {}
            return {
                "ok": True,
                "app_id": self.app_id,
                "access_token": token,
                "expires_in": 43200,
                "refresh_token": f"xoxe-1-{secrets.token_hex(16)}",
                "token_type": "bot",
                "scope": self.scopes,
                "bot_user_id": self.bot_user_id,
                "team": {"id": self.team_id, "name": self.team_name},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        if not call.params.get("code"):
            return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{self.team_id}-{n}-{secrets.token_hex(12)}"
        self.tokens[token] = {}
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": self.scopes,
            "bot_user_id": self.bot_user_id,
            "app_id": self.app_id,
            "team": {"id": self.team_id, "name": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": USER_ID},
        }

    def _team_info(self, call: Call) -> JSONDict:
        team_id = str(call.params.get("team") or self.team_id)
        return {
            "ok": True,
            "team": {
                "id": team_id,
                "name": self.team_name,
                "url": f"https://{self.team_domain}.slack.com/",
                "domain": self.team_domain,
                "email_domain": "example.com",
                "icon": {"image_default": True, "image_34": "", "image_44": "", "image_68": ""},
                "avatar_base_url": "https://ca.slack-edge.com/",
                "is_verified": False,
            },
        }


def _brief(params: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(params, default=repr, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def _outcome(call: Call) -> str:
    if call.status is None:
        return "(pending)"
    if isinstance(call.response, dict) and not call.response.get("ok", True):
        return f"{call.status} error={call.response.get('error')}"
    return str(call.status)


__all__ = ["Call", "FakeSlack", "Responder", "ResponsePost"]
