"""Triggers and their conditions: which lead events start which workflows.

A workflow has one trigger and a ``trigger_conditions`` object (JSON Schema ``workflows.trigger_conditions``
in :mod:`lma_bot.jsonschemas`); every condition given must hold (AND), an empty object always matches:

=================  ==========================================================================================
``statuses``       the lead's status is one of these (for ``status_changed``: the new status)
``from_statuses``  ``status_changed`` only: the previous status is one of these
``sources``        the lead's source is one of these
``tags_any``       the lead has at least one of these tags
``tags_all``       the lead has all of these tags
``min_score``      the lead's score is at least this
``threshold``      ``score_threshold`` only, and required there: fires when the score goes from below this
                   to at least this (once per crossing; going down and up again fires again)
=================  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lma_bot.errors import InvalidInput
from lma_bot.jsonschemas import validate_document


class Trigger(StrEnum):
    """The trigger names users type; ``db`` is the value stored in ``workflows.trigger_type``."""

    LEAD_CREATED = "lead_created"
    STATUS_CHANGED = "status_changed"
    ASSIGNED = "assigned"
    SCORE_THRESHOLD = "score_threshold"
    NOTE_ADDED = "note_added"
    MANUAL = "manual"

    @property
    def db(self) -> str:
        return _DB[self]

    @property
    def event(self) -> str:
        """The ``event`` of the outbound payload."""
        return _EVENTS[self]

    @classmethod
    def from_db(cls, value: str | None) -> Trigger | None:
        for trigger, stored in _DB.items():
            if stored == value:
                return trigger
        return None


_DB = {
    Trigger.LEAD_CREATED: "lead_created",
    Trigger.STATUS_CHANGED: "lead_status_change",
    Trigger.ASSIGNED: "lead_assigned",
    Trigger.SCORE_THRESHOLD: "score_threshold",
    Trigger.NOTE_ADDED: "note_added",
    Trigger.MANUAL: "manual",
}
_EVENTS = {
    Trigger.LEAD_CREATED: "lead.created",
    Trigger.STATUS_CHANGED: "lead.status_changed",
    Trigger.ASSIGNED: "lead.assigned",
    Trigger.SCORE_THRESHOLD: "lead.score_threshold_crossed",
    Trigger.NOTE_ADDED: "note.added",
    Trigger.MANUAL: "manual",
}
TRIGGER_NAMES = tuple(t.value for t in Trigger)


def parse_trigger(name: str) -> Trigger:
    try:
        return Trigger(name.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown trigger {name!r}; triggers are {', '.join(TRIGGER_NAMES)}", field="trigger"
        ) from None


def validate_conditions(trigger: Trigger, conditions: Any) -> dict[str, Any]:
    """The conditions if valid for ``trigger``; else :class:`InvalidInput` naming the problem."""
    if not isinstance(conditions, dict):
        raise InvalidInput("trigger_conditions: must be a JSON object", field="trigger_conditions")
    validate_document("workflows.trigger_conditions", conditions)
    if "from_statuses" in conditions and trigger is not Trigger.STATUS_CHANGED:
        raise InvalidInput(
            "trigger_conditions.from_statuses: only for the status_changed trigger",
            field="trigger_conditions.from_statuses",
        )
    if trigger is Trigger.SCORE_THRESHOLD and "threshold" not in conditions:
        raise InvalidInput(
            'trigger_conditions.threshold: the score_threshold trigger needs one, e.g. {"threshold": 80}',
            field="trigger_conditions.threshold",
        )
    if "threshold" in conditions and trigger is not Trigger.SCORE_THRESHOLD:
        raise InvalidInput(
            "trigger_conditions.threshold: only for the score_threshold trigger",
            field="trigger_conditions.threshold",
        )
    return conditions


@dataclass(frozen=True)
class LeadFacts:
    """What conditions look at, taken from the lead after the change."""

    status: str
    source: str | None
    tags: list[str]
    score: int
    previous_status: str | None = None
    previous_score: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def matches(conditions: dict[str, Any], facts: LeadFacts) -> bool:
    if "statuses" in conditions and facts.status not in conditions["statuses"]:
        return False
    if "from_statuses" in conditions and facts.previous_status not in conditions["from_statuses"]:
        return False
    if "sources" in conditions and (facts.source or "") not in conditions["sources"]:
        return False
    tags = {t.lower() for t in facts.tags}
    if "tags_any" in conditions and not tags & {t.lower() for t in conditions["tags_any"]}:
        return False
    if "tags_all" in conditions and not {t.lower() for t in conditions["tags_all"]} <= tags:
        return False
    if "min_score" in conditions and facts.score < int(conditions["min_score"]):
        return False
    if "threshold" in conditions:
        threshold = int(conditions["threshold"])
        before = facts.previous_score
        if before is None or not (before < threshold <= facts.score):
            return False
    return True
