"""Test doubles for Slack: a fake Web API on loopback and requests signed exactly as Slack signs them.

``FakeSlack`` (``tests.fakes.slack_api``) stands in for ``https://slack.com/api/`` and for the
``response_url`` / file-upload hosts; point ``AsyncWebClient(base_url=fake.api_url)`` at it.
``SlackClient`` and the payload builders (``tests.fakes.slack_requests``) play Slack's side of the
conversation: signed slash commands, block actions, view submissions and Events API envelopes posted to
the bot's ``/slack/events``.
"""

from tests.fakes.slack_api import Call, FakeSlack, ResponsePost
from tests.fakes.slack_requests import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    SlackClient,
    block_action,
    event_callback,
    form_body,
    interactive_body,
    sign,
    slack_headers,
    slash_command,
    view_submission,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "Call",
    "FakeSlack",
    "ResponsePost",
    "SlackClient",
    "block_action",
    "event_callback",
    "form_body",
    "interactive_body",
    "sign",
    "slack_headers",
    "slash_command",
    "view_submission",
]
