from __future__ import annotations

import datetime as dt
from enum import StrEnum
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

    @field_validator("first_name", "last_name", "company", "phone", "job_title", "source")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

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


class ListFilter(StrEnum):
    ALL = "all"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    STATUS = "status"
    TAG = "tag"
    HOT = "hot"


class LeadQuery(BaseModel):
    """What `/lead list` or `/lead find` asked for; serialized into pagination buttons."""

    model_config = ConfigDict(extra="forbid")

    filter: ListFilter = ListFilter.ALL
    value: str | None = None
    text: str | None = None  # set for `find`


class Cursor(BaseModel):
    """Keyset position: the (created_at, id) of a row; pages run newest first."""

    created_at: dt.datetime
    id: int


class LeadSummary(BaseModel):
    id: int
    name: str
    email: str | None
    company: str | None
    status: str
    score: int
    lead_temperature: str
    owner_slack_id: str | None
    owner_name: str | None
    created_at: dt.datetime


class LeadPage(BaseModel):
    query: LeadQuery
    items: list[LeadSummary]
    first: Cursor | None
    last: Cursor | None
    has_next: bool
    has_prev: bool


class NoteView(BaseModel):
    id: int
    author_id: int | None
    author_name: str | None
    author_slack_id: str | None
    content: str
    is_private: bool
    note_type: str
    created_at: dt.datetime


class OwnerView(BaseModel):
    id: int
    name: str
    slack_user_id: str | None


class AssignmentLine(BaseModel):
    """One row of a lead's assignment history on its card."""

    id: int
    status: str
    at: dt.datetime
    from_name: str | None = None
    from_slack_id: str | None = None
    to_name: str | None = None
    to_slack_id: str | None = None
    by_name: str | None = None
    by_slack_id: str | None = None
    reason: str | None = None


class LeadCard(BaseModel):
    """Everything `/lead show` renders, cached in Redis as ``lead:{id}`` (notes unfiltered; the viewer's
    visibility is applied on read)."""

    organization_id: int
    id: int
    name: str
    email: str | None
    company: str | None
    phone: str | None
    job_title: str | None
    source: str | None
    status: str
    score: int
    lead_temperature: str
    tags: list[str]
    owner: OwnerView | None
    notes: list[NoteView]
    next_reminder_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    assignments: list[AssignmentLine] = Field(default_factory=list)
