"""Quiet hours: when automatic messages wait, in the user's own timezone."""

from __future__ import annotations

import datetime as dt

import pytest

from lma_bot.reminders.quiet import digest_time, in_quiet_hours, next_allowed

UTC = dt.UTC


@pytest.mark.parametrize(
    ("utc", "tz", "prefs", "quiet"),
    [
        (dt.datetime(2026, 11, 25, 21, 0, tzinfo=UTC), "UTC", {}, True),  # 21:00 default 20-08
        (dt.datetime(2026, 11, 25, 7, 59, tzinfo=UTC), "UTC", {}, True),
        (dt.datetime(2026, 11, 25, 8, 0, tzinfo=UTC), "UTC", {}, False),
        (dt.datetime(2026, 11, 25, 19, 59, tzinfo=UTC), "UTC", {}, False),
        (dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC), "Asia/Tokyo", {}, True),  # 21:00 in Tokyo
        (dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC), "America/New_York", {}, True),  # 07:00 EST
        (dt.datetime(2026, 11, 25, 13, 30, tzinfo=UTC), "America/New_York", {}, False),
        (
            dt.datetime(2026, 11, 25, 13, 0, tzinfo=UTC),
            "UTC",
            {"quiet_hours": {"start": "12:00", "end": "14:00"}},
            True,
        ),
        (
            dt.datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
            "UTC",
            {"quiet_hours": {"start": "12:00", "end": "14:00"}},
            False,
        ),
        (
            dt.datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
            "UTC",
            {"quiet_hours": {"start": "00:00", "end": "00:00"}},
            False,
        ),
    ],
)
def test_in_quiet_hours(utc: dt.datetime, tz: str, prefs: dict[str, object], quiet: bool) -> None:
    assert in_quiet_hours(utc, tz, prefs) is quiet


def test_next_allowed_is_the_end_of_the_quiet_period_in_the_users_zone() -> None:
    evening = dt.datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # 22:00 in Paris
    assert next_allowed(evening, "Europe/Paris", {}) == dt.datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    early = dt.datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 06:00 in Paris
    assert next_allowed(early, "Europe/Paris", {}) == dt.datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    noon = dt.datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert next_allowed(noon, "Europe/Paris", {}) == noon


def test_digest_time_defaults_and_preference() -> None:
    assert digest_time({}) == dt.time(8, 30)
    assert digest_time({"digest_time": "07:15"}) == dt.time(7, 15)
    assert digest_time({"digest_time": "bogus"}) == dt.time(8, 30)
