"""Typed Slack ids: action and callback ids, and the pydantic models carried in button values and
``private_metadata`` (serialized as JSON, validated on the way back in)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from lma_bot.leads.schemas import Cursor, LeadQuery


class Action(StrEnum):
    LEAD_OPEN = "lead-open"
    LEAD_ADD_NOTE = "lead-add-note"
    LEAD_CHANGE_STATUS = "lead-change-status"
    LEAD_REASSIGN = "lead-reassign"
    LEAD_REASSIGN_APPROVE = "lead-reassign-approve"
    LEAD_REASSIGN_REJECT = "lead-reassign-reject"
    LEAD_REASSIGN_CANCEL = "lead-reassign-cancel"
    LEAD_REMIND = "lead-remind"
    LEAD_SCORE = "lead-score-details"
    LIST_PAGE = "lead-list-page"
    USER_ADD_MENTIONED = "user-add-mentioned"
    REMINDER_DONE = "reminder-done"
    REMINDER_SNOOZE_HOUR = "reminder-snooze-hour"
    REMINDER_SNOOZE_TOMORROW = "reminder-snooze-tomorrow"
    REMINDER_CANCEL = "reminder-cancel"
    RULE_EDIT = "rule-edit"
    RULE_TOGGLE = "rule-toggle"


class View(StrEnum):
    CREATE_LEAD = "lead-create"
    ADD_NOTE = "lead-add-note"
    CHANGE_STATUS = "lead-change-status"
    REMIND = "lead-remind"
    RULE = "scoring-rule"
    REASSIGN = "lead-reassign"


class Block(StrEnum):
    """block_id/action_id of modal inputs; per-field errors are keyed by block_id."""

    EMAIL = "email"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    COMPANY = "company"
    SOURCE = "source"
    TAGS = "tags"
    NOTE = "note"
    PRIVATE = "private"
    STATUS = "status"
    REASON = "reason"
    WHEN = "when"
    MESSAGE = "message"
    RULE_NAME = "rule_name"
    RULE_POINTS = "rule_points"
    RULE_POLICY = "rule_policy"
    RULE_LIMIT = "rule_limit"
    RULE_PRIORITY = "rule_priority"
    RULE_CRITERIA = "rule_criteria"
    ASSIGNEE = "assignee"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dumps(self) -> str:
        return self.model_dump_json(exclude_none=True)


class LeadRef(Payload):
    lead_id: int


class PageRequest(Payload):
    query: LeadQuery
    after: Cursor | None = None
    before: Cursor | None = None


class RuleRef(Payload):
    rule_id: int


class ReminderRef(Payload):
    reminder_id: int


class AssignmentRef(Payload):
    assignment_id: int


class MemberRef(Payload):
    slack_user_id: str


class ModalContext(Payload):
    """private_metadata of our modals: where to confirm, and which lead (for note/status)."""

    channel_id: str | None = None
    lead_id: int | None = None
