"""Read views of assignments (no Slack or HTTP types)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Strategy(StrEnum):
    NONE = "none"
    ROUND_ROBIN = "round_robin"
    LEAST_BUSY = "least_busy"


DEFAULT_EXPIRY_HOURS = 24


@dataclass(frozen=True)
class AssignmentSettings:
    strategy: Strategy = Strategy.NONE
    capacity: int | None = None  # the organization's default max open leads per rep
    expiry_hours: int = DEFAULT_EXPIRY_HOURS
    approvals_channel: str | None = None


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    slack_user_id: str | None


@dataclass(frozen=True)
class RequestView:
    """A reassignment request (or a completed assignment) with the people and the lead it names."""

    id: int
    status: str
    lead_id: int
    lead_name: str
    lead_company: str | None
    lead_status: str
    lead_score: int
    lead_temperature: str
    from_user: Person | None
    to_user: Person | None
    requested_by: Person | None
    decided_by: Person | None
    reason: str | None
    decision_note: str | None
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    expires_at: dt.datetime | None
    approval_messages: list[dict[str, str]]


@dataclass(frozen=True)
class MemberSettings:
    id: int
    name: str
    slack_user_id: str | None
    role: str
    is_active: bool
    away: bool
    capacity: int | None
    open_leads: int


@dataclass(frozen=True)
class SettingsOverview:
    settings: AssignmentSettings
    members: list[MemberSettings]
