"""Domain errors. Services raise these; each edge maps them to its answer (an ephemeral Slack message,
an HTTP status, one line on stderr with exit code 2). ``str(error)`` is safe to show to the user."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DomainError(Exception):
    """Base class: a request that cannot be carried out as asked."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The request collides with existing data (a duplicate email, a Slack team already set up)."""


class InvalidInput(DomainError, ValueError):
    """The request is malformed; ``field`` names the offending input when there is one.

    Also a ``ValueError`` so pydantic validators can raise it and keep its message."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class PermissionDenied(DomainError):
    pass


def parse_model(model: type[M], data: dict[str, object]) -> M:
    """Validate ``data`` into ``model``; a failure becomes one :class:`InvalidInput` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{field}: {message}" if field else message, field=field) from None
