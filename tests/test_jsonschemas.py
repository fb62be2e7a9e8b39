from __future__ import annotations

import pytest

from lma_bot.errors import InvalidInput
from lma_bot.jsonschemas import SCHEMAS, validate_document


def test_valid_documents_pass() -> None:
    validate_document(
        "organizations.settings",
        {"approvals_channel": "C0APPROVE", "assignment": {"strategy": "round_robin", "capacity": 30}},
    )
    validate_document("users.preferences", {"quiet_hours": {"start": "20:00", "end": "08:00"}})
    validate_document("leads.custom_fields", {"industry": "saas", "seats": 40})


@pytest.mark.parametrize(
    ("kind", "document", "message"),
    [
        (
            "organizations.settings",
            {"assignment": {"strategy": "rr"}},
            "settings.assignment.strategy: 'rr' is not one of ['none', 'round_robin', 'least_busy']",
        ),
        (
            "organizations.settings",
            {"colour": "red"},
            "settings: Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            "users.preferences",
            {"quiet_hours": {"start": "25:00", "end": "08:00"}},
            "preferences.quiet_hours.start: '25:00' does not match '^([01]\\\\d|2[0-3]):[0-5]\\\\d$'",
        ),
        ("leads.custom_fields", {"nested": {"a": 1}}, "custom_fields.nested: {'a': 1} is not of type 'string', 'number', 'boolean', 'null'"),
        ("workflows.trigger_conditions", {"statuses": [1]}, "trigger_conditions.statuses[0]: 1 is not of type 'string'"),
    ],
)  # fmt: skip
def test_invalid_documents_name_the_json_path(kind: str, document: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_document(kind, document)
    assert str(caught.value) == message


def test_every_configuration_column_has_a_schema() -> None:
    assert {
        "organizations.settings",
        "users.preferences",
        "integrations.configuration",
        "workflows.trigger_conditions",
        "workflows.configuration",
        "campaigns.target_criteria",
        "campaigns.goals",
    } <= SCHEMAS.keys()
