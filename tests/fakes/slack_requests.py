"""Requests signed exactly as Slack signs them now live in :mod:`lma_bot.playground.slack_requests` (the
playground sends them too); this module keeps the tests' import path and names."""

from lma_bot.playground.slack_requests import *  # noqa: F403
