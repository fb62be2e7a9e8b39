"""The natural-time parser of ``/lead remind``: a table across timezones and daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lma_bot.reminders.when import WhenError, parse_when

UTC = dt.UTC


def local(zone: str, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


# now (local wall time in zone), text, expected local wall time (in zone)
CASES = [
    # durations are elapsed time
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in 2h", (2026, 11, 25, 12, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in 30 minutes", (2026, 11, 25, 10, 30)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "In 1h30m", (2026, 11, 25, 11, 30)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in an hour", (2026, 11, 25, 11, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in 3 days", (2026, 11, 28, 10, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in 2 weeks", (2026, 12, 9, 10, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "in 1 hour and 15 min", (2026, 11, 25, 11, 15)),
    # days with and without a time (Wednesday 25 Nov 2026)
    ("Europe/Paris", (2026, 11, 25, 10, 0), "tomorrow 9am", (2026, 11, 26, 9, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "tomorrow", (2026, 11, 26, 9, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "today 5pm", (2026, 11, 25, 17, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "tomorrow at 12:30pm", (2026, 11, 26, 12, 30)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "fri 14:00", (2026, 11, 27, 14, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "on Friday at 2pm", (2026, 11, 27, 14, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "next monday", (2026, 11, 30, 9, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "wed 11:00", (2026, 11, 25, 11, 0)),  # today, still ahead
    ("Europe/Paris", (2026, 11, 25, 10, 0), "wed 9:00", (2026, 12, 2, 9, 0)),  # today has passed
    ("Europe/Paris", (2026, 11, 25, 10, 0), "next wed", (2026, 12, 2, 9, 0)),  # never today
    ("Europe/Paris", (2026, 11, 25, 10, 0), "next week", (2026, 11, 30, 9, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "2026-12-01 09:30", (2026, 12, 1, 9, 30)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "2026-12-01", (2026, 12, 1, 9, 0)),
    # a time alone: its next occurrence
    ("Europe/Paris", (2026, 11, 25, 10, 0), "5pm", (2026, 11, 25, 17, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "at 9:15", (2026, 11, 26, 9, 15)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "noon", (2026, 11, 25, 12, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "12am", (2026, 11, 26, 0, 0)),
    ("Europe/Paris", (2026, 11, 25, 10, 0), "12pm", (2026, 11, 25, 12, 0)),
    # the user's timezone decides what "tomorrow" is: 23:30 in LA is already tomorrow in UTC
    ("America/Los_Angeles", (2026, 11, 25, 23, 30), "tomorrow 9am", (2026, 11, 26, 9, 0)),
    ("Asia/Tokyo", (2026, 11, 26, 0, 30), "today 9am", (2026, 11, 26, 9, 0)),
    ("Asia/Kolkata", (2026, 11, 25, 10, 0), "tomorrow 9am", (2026, 11, 26, 9, 0)),
    # daylight saving: wall clock kept across the change
    ("America/New_York", (2026, 3, 7, 10, 0), "tomorrow 9am", (2026, 3, 8, 9, 0)),
    ("Europe/Paris", (2026, 10, 24, 10, 0), "tomorrow 9am", (2026, 10, 25, 9, 0)),
    ("Europe/Paris", (2026, 10, 24, 10, 0), "next monday", (2026, 10, 26, 9, 0)),
    # the skipped hour moves forward by the gap; a repeated hour is its first occurrence
    ("America/New_York", (2026, 3, 7, 10, 0), "tomorrow 2:30am", (2026, 3, 8, 3, 30)),
    ("America/New_York", (2026, 10, 31, 10, 0), "tomorrow 1:30am", (2026, 11, 1, 1, 30)),
    ("Australia/Sydney", (2026, 4, 4, 10, 0), "tomorrow 9am", (2026, 4, 5, 9, 0)),
]


@pytest.mark.parametrize(("zone", "now", "text", "expected"), CASES)
def test_parse_when_table(zone: str, now: tuple[int, ...], text: str, expected: tuple[int, ...]) -> None:
    due = parse_when(text, now=local(zone, *now), tz=zone)
    assert due.local.replace(tzinfo=None) == dt.datetime(*expected)  # type: ignore[misc]
    assert due.at.tzinfo is UTC
    assert due.local.astimezone(UTC) == due.at  # (== across zones is False for repeated hours: PEP 495)


def test_duration_is_elapsed_time_across_a_dst_change() -> None:
    # 01:30 EST on the spring-forward night + 2h of real time is 04:30 EDT on the wall clock
    due = parse_when("in 2h", now=local("America/New_York", 2026, 3, 8, 1, 30), tz="America/New_York")
    assert due.local.replace(tzinfo=None) == dt.datetime(2026, 3, 8, 4, 30)
    assert due.at - local("America/New_York", 2026, 3, 8, 1, 30) == dt.timedelta(hours=2)


def test_repeated_hour_is_the_first_occurrence() -> None:
    due = parse_when(
        "tomorrow 1:30am", now=local("America/New_York", 2026, 10, 31, 10), tz="America/New_York"
    )
    assert due.at == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT (UTC-4), not EST


def test_explicit_time_flag() -> None:
    now = local("Europe/Paris", 2026, 11, 25, 10)
    assert parse_when("in 2h", now=now, tz="Europe/Paris").explicit_time
    assert parse_when("tomorrow 9am", now=now, tz="Europe/Paris").explicit_time
    assert not parse_when("tomorrow", now=now, tz="Europe/Paris").explicit_time


def test_describe_names_the_zone() -> None:
    due = parse_when("2026-12-01 09:30", now=local("Europe/Paris", 2026, 11, 25, 10), tz="Europe/Paris")
    assert due.describe() == "Tue 1 Dec 2026 09:30 (Europe/Paris)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Say when"),
        ("whenever", "I can't read `whenever` as a time"),
        ("in 2 fortnights", "`fortnights` is not a unit I know"),
        ("in soon", "I can't read `in soon` as a duration"),
        ("in 0 minutes", "That is not in the future"),
        ("2026-11-24 09:00", "Tue 24 Nov 2026 09:00 has already passed"),
        ("today 9am", "Wed 25 Nov 2026 09:00 has already passed"),
        ("2026-02-30", "`2026-02-30` is not a date"),
        ("tomorrow 25:00", "`25:00` is not a time of day"),
        ("tomorrow 13pm", "`13pm` is not a time of day"),
        ("tomorrow 9", "`9` needs am/pm or minutes"),
        ("next blursday", "I can't read `next blursday` as a time"),
        ("2029-01-01", "That is more than two years away"),
    ],
)
def test_bad_or_past_times_say_why_and_show_examples(text: str, problem: str) -> None:
    with pytest.raises(WhenError) as raised:
        parse_when(text, now=local("Europe/Paris", 2026, 11, 25, 10), tz="Europe/Paris")
    message = str(raised.value)
    assert message.startswith(problem)
    assert "`in 2h`" in message
    assert "`2026-12-01 09:30`" in message


@given(
    minutes=st.integers(min_value=1, max_value=60 * 24 * 30),
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
    now=st.datetimes(
        min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_durations_and_days_are_always_ahead(minutes: int, zone: str, now: dt.datetime) -> None:
    assert parse_when(f"in {minutes} minutes", now=now, tz=zone).at == now + dt.timedelta(minutes=minutes)
    for text in ("tomorrow 9am", "next monday", "5pm", "fri 14:00"):
        due = parse_when(text, now=now, tz=zone)
        assert now < due.at <= now + dt.timedelta(days=8)
