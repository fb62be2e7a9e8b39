"""What every listener shares: reading a clicked button's value."""

from __future__ import annotations

import pytest

from handlers.slack.ids import LeadRef, RuleRef
from handlers.slack.replies import button_value
from lma_bot.errors import InvalidInput


def _click(value: str | None) -> dict[str, object]:
    return {"actions": [{"action_id": "x", "value": value}]}


def test_a_button_value_parses_into_its_ref() -> None:
    assert button_value(LeadRef, _click(LeadRef(lead_id=42).model_dump_json())).lead_id == 42


@pytest.mark.parametrize("value", ['{"lead_id": "x"}', "not json", None, '{"rule_id": 3}'])
def test_an_outdated_button_says_so_and_what_to_do(value: str | None) -> None:
    with pytest.raises(InvalidInput, match=r"^this button is out of date; open the lead again$"):
        button_value(LeadRef, _click(value), again="open the lead again")
    with pytest.raises(InvalidInput, match=r"^this button is out of date$"):
        button_value(RuleRef, _click(value if value != '{"rule_id": 3}' else "[]"))
