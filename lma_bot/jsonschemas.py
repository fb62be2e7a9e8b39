"""JSON Schema validation of the configuration JSONB columns, applied by services before writing.

An invalid document is refused with the JSON path and the reason (``settings.assignment.strategy: 'rr'
is not one of ['none', 'round_robin', 'least_busy']``).
"""

from __future__ import annotations

from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lma_bot.errors import InvalidInput

_TIME = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}
_NAMES = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 100},
    "minItems": 1,
    "maxItems": 50,
}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "organizations.settings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "approvals_channel": {"type": ["string", "null"], "pattern": r"^[CG][A-Z0-9]{2,30}$"},
            "assignment": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "strategy": {"enum": ["none", "round_robin", "least_busy"]},
                    "capacity": {"type": ["integer", "null"], "minimum": 1},
                    "request_expiry_hours": {"type": "integer", "minimum": 1, "maximum": 720},
                },
            },
            "scoring": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "warm_threshold": {"type": "integer"},
                    "hot_threshold": {"type": "integer"},
                    "hysteresis": {"type": "integer", "minimum": 0},
                    "hot_alert_channel": {"type": ["string", "null"]},
                    "decay_points": {"type": "integer", "minimum": 0},
                    "decay_every_days": {"type": "integer", "minimum": 1},
                    "decay_floor": {"type": "integer"},
                },
            },
            "allow_private_workflow_targets": {"type": "boolean"},
        },
    },
    "users.preferences": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "notifications": {
                "type": "object",
                "additionalProperties": {"type": "boolean"},
            },
            "quiet_hours": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "end"],
                "properties": {"start": _TIME, "end": _TIME},
            },
            "digest": {"type": "boolean"},
            "digest_time": _TIME,
            "digest_sent_on": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            "away": {"type": "boolean"},
            "capacity": {"type": ["integer", "null"], "minimum": 1},
        },
    },
    "integrations.configuration": {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "properties": {
            "auth": {"enum": ["header", "hmac", "basic", "ecdsa", "signing_key"]},
            "header_name": {"type": "string", "pattern": r"^[A-Za-z0-9-]{1,64}$"},
            "base_url": {"type": "string", "pattern": r"^https?://"},
            "allow_private_targets": {"type": "boolean"},
        },
    },
    "workflows.trigger_conditions": {  # the language is documented in lma_bot.workflows.conditions
        "type": "object",
        "properties": {
            "statuses": _NAMES,
            "from_statuses": _NAMES,
            "sources": _NAMES,
            "tags_any": _NAMES,
            "tags_all": _NAMES,
            "min_score": {"type": "integer"},
            "threshold": {"type": "integer"},
        },
        "additionalProperties": False,
    },
    "workflows.configuration": {"type": "object"},
    "campaigns.target_criteria": {"type": "object"},
    "campaigns.goals": {
        "type": "object",
        "additionalProperties": {"type": ["number", "string"]},
    },
    "leads.custom_fields": {
        "type": "object",
        "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_]{0,63}$"},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "maxProperties": 100,
    },
}

_VALIDATORS: Final = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}


def _path(prefix: str, error: ValidationError) -> str:
    parts = [prefix.split(".", 1)[1]]
    for item in error.absolute_path:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts).replace(".[", "[")


def validate_document(kind: str, document: Any) -> None:
    """Raise :class:`InvalidInput` naming the JSON path of the first problem in ``document``."""
    validator = _VALIDATORS[kind]
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        path = _path(kind, first)
        raise InvalidInput(f"{path}: {first.message}", field=path)
