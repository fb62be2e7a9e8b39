"""Declarative base, naming convention and the helpers every tenant table uses.

Tenant tables have primary key ``(organization_id, id)`` and every foreign key between tenant tables carries
``organization_id``: a row can never point at another organization's row, and every row of an
organization co-locates for distribution by ``organization_id`` (docs/scaling.md lists what Citus still
needs changed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Integer,
    MetaData,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        dt.datetime: DateTime(timezone=True),
    }


def now_column(*, onupdate: bool = False) -> Mapped[dt.datetime]:
    return mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now() if onupdate else None,
    )


class TenantMixin:
    """``organization_id`` + ``id`` as the composite primary key, org rows cascade with their organization."""

    organization_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
        sort_order=-20,
    )
    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True, sort_order=-19)


class BigTenantMixin(TenantMixin):
    """Same as :class:`TenantMixin` for high-volume tables (events, history) with a BIGINT id."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True, sort_order=-19)


def tenant_fk(column: str, target: str, *, ondelete: str = "CASCADE") -> ForeignKeyConstraint:
    """Foreign key ``(organization_id, column) -> target(organization_id, id)``."""
    return ForeignKeyConstraint(
        ["organization_id", column],
        [f"{target}.organization_id", f"{target}.id"],
        ondelete=ondelete,
    )


def user_fk(column: str) -> ForeignKeyConstraint:
    """A reference to a user that survives the user's deletion: only ``column`` is set NULL (PostgreSQL 15)."""
    return tenant_fk(column, "users", ondelete=f"SET NULL ({column})")


def one_of(column: str, values: Iterable[str], *, name: str | None = None) -> CheckConstraint:
    """CHECK that an enum-like column holds one of ``values`` (NULL allowed unless the column is NOT NULL)."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)
