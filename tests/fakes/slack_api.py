"""The fake Slack Web API now lives in :mod:`lma_bot.playground.slack_api` (the playground serves it too);
this module keeps the tests' import path."""

from lma_bot.playground.slack_api import *  # noqa: F403
from lma_bot.playground.slack_api import Call, FakeSlack, Responder, ResponsePost

__all__ = ["Call", "FakeSlack", "Responder", "ResponsePost"]
