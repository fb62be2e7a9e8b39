from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lma_bot.validation import check_slack_team_id


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=255)
    slack_team_id: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slack_team_id")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        return check_slack_team_id(value) if value else None


class OrganizationView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    slack_team_id: str | None
    subscription_tier: str
    is_active: bool
    created_at: dt.datetime
