"""Small shared validators for identifiers users type: emails, time zones, Slack ids."""

from __future__ import annotations

import re
import zoneinfo

from lma_bot.errors import InvalidInput

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_SLACK_TEAM = re.compile(r"^[TE][A-Z0-9]{2,30}$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def normalize_email(value: str, *, field: str = "email") -> str:
    email = value.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput(f"not a valid email address: {value!r}", field=field)
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_timezone(value: str, *, field: str = "timezone") -> str:
    name = value.strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)", field=field
        ) from None
    return name


def check_slack_team_id(value: str, *, field: str = "slack_team_id") -> str:
    team = value.strip()
    if not _SLACK_TEAM.match(team):
        raise InvalidInput(f"not a Slack team id: {value!r} (looks like T0123ABCD)", field=field)
    return team


def check_slack_user_id(value: str, *, field: str = "slack_user_id") -> str:
    user = value.strip()
    if not _SLACK_USER.match(user):
        raise InvalidInput(f"not a Slack user id: {value!r} (looks like U0123ABCD)", field=field)
    return user
