"""What the Slack listeners share: how an answer only its asker sees is sent, and the plain ack."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncAck

from lma_bot.errors import InvalidInput

_Value = TypeVar("_Value", bound=BaseModel)

EPHEMERAL: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False}
"""``respond(..., **EPHEMERAL)``: a new message only the user who acted sees, the original left as it is."""


async def just_ack(ack: AsyncAck) -> None:
    """The ack of a listener whose work is all lazy (it answers through ``respond`` or the Web API)."""
    await ack()


def button_value(model: type[_Value], body: dict[str, Any], *, again: str = "") -> _Value:
    """What the clicked button carries (one of the ``*Ref`` models of :mod:`handlers.slack.ids`); a value that
    no longer parses (a button from an older version) is an :class:`InvalidInput` saying so, and ``again``
    what to do instead."""
    try:
        return model.model_validate_json(str(body["actions"][0].get("value") or ""))
    except ValidationError:
        raise InvalidInput("this button is out of date" + (f"; {again}" if again else "")) from None
