from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lma_bot.validation import normalize_email


class LeadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = None
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=50)
    job_title: str | None = Field(default=None, max_length=255)
    source: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    assigned_to_id: int | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value) if value else None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for tag in value:
            clean = tag.strip().lower()
            if not clean or len(clean) > 64:
                raise ValueError(f"tag {tag!r} must be 1-64 characters")
            seen[clean] = None
        return list(seen)

    @model_validator(mode="after")
    def _identifiable(self) -> LeadCreate:
        if not (self.email or self.first_name or self.last_name or self.company):
            raise ValueError("a lead needs at least an email, a name or a company")
        return self


class LeadView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    source: str | None
    status: str
    score: int
    lead_temperature: str
    assigned_to_id: int | None
    tags: list[str]
    created_at: dt.datetime
