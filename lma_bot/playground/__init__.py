"""The local Slack playground: ``lma-bot playground [--demo]``.

A stand-in for the parts of Slack the bot uses (:mod:`.slack_api`, the Web API; :mod:`.slack_requests`,
requests signed as Slack signs them) and a small Slack-like page at ``/playground`` that drives the bot
through ``POST /slack/events`` like real Slack would. Like :mod:`lma_bot.entrypoints`, :mod:`.server` is a
composition root: it wires the web app, the scheduler jobs and the stand-in together.
"""
