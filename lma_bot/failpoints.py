"""Fault injection for crash tests: ``LMA_FAILPOINTS=name[,name...]`` makes the process SIGKILL itself when it
reaches a named point, the way a power cut or an OOM kill would stop it there.

Only the test suite sets it. The points are few and named where a crash matters for exactly-once delivery:

- ``reminder.after_intent``: the send intent is committed, Slack not yet called;
- ``reminder.after_post``: Slack has the message, PostgreSQL does not know yet;
- ``email.after_intent`` / ``email.after_send``: the same two points of an outbound email (SMTP said 250).
"""

from __future__ import annotations

import os
import signal

ENV = "LMA_FAILPOINTS"


def failpoint(name: str) -> None:
    armed = os.environ.get(ENV)
    if armed and name in {p.strip() for p in armed.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
