"""The one place domain errors become what a Slack user sees: an ephemeral message. Users never see a
traceback; unexpected failures get a short reference to find the log line."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.slack.grammar import UsageError
from handlers.slack.replies import EPHEMERAL
from lma_bot.errors import DomainError

log = logging.getLogger(__name__)


def usage_text(error: UsageError) -> str:
    return f":warning: {error.problem}.\n{error.usage}\nMore: `/lead help`"


def error_text(error: DomainError) -> str:
    text = error.message
    return text if text.startswith(":") else f":warning: {text[:1].upper()}{text[1:]}"


@asynccontextmanager
async def answer_errors(respond: AsyncRespond, *, what: str) -> AsyncIterator[None]:
    try:
        yield
    except UsageError as exc:
        await respond(text=usage_text(exc), **EPHEMERAL)
    except DomainError as exc:
        await respond(text=error_text(exc), **EPHEMERAL)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("slack.%s.failed ref=%s", what, ref)
        await respond(
            text=f":x: Something went wrong on our side (ref `{ref}`). Please try again.", **EPHEMERAL
        )
