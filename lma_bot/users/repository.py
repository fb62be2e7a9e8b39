from __future__ import annotations

from sqlalchemy import Select, select

from lma_bot.models import User


def by_email(org_id: int, email: str) -> Select[tuple[User]]:
    return select(User).where(User.organization_id == org_id, User.email_normalized == email.lower())


def by_slack_id(org_id: int, slack_user_id: str) -> Select[tuple[User]]:
    return select(User).where(User.organization_id == org_id, User.slack_user_id == slack_user_id)
