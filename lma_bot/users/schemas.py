from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lma_bot.validation import check_slack_user_id, check_timezone, normalize_email

Role = Literal["admin", "manager", "rep"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str
    name: str = Field(min_length=1, max_length=255)
    role: Role = "rep"
    slack_user_id: str | None = None
    timezone: str = "UTC"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)

    @field_validator("slack_user_id")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        return check_slack_user_id(value) if value else None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)


class UserView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    email: str
    name: str
    role: str
    slack_user_id: str | None
    timezone: str
    is_active: bool
    created_at: dt.datetime
