"""Quiet hours: when automatic messages (digests, alerts, a reminder set for a day without a time) wait.

Each user's ``preferences.quiet_hours`` (``{"start": "20:00", "end": "08:00"}``, local to the user's
timezone) or, when unset, 20:00-08:00. A time the user chose explicitly is never delayed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_QUIET = (dt.time(20, 0), dt.time(8, 0))
DEFAULT_DIGEST_TIME = dt.time(8, 30)


def _time(text: Any, default: dt.time) -> dt.time:
    if isinstance(text, str) and len(text) == 5 and text[2] == ":":
        try:
            return dt.time(int(text[:2]), int(text[3:]))
        except ValueError:
            return default
    return default


def quiet_window(preferences: dict[str, Any] | None) -> tuple[dt.time, dt.time]:
    quiet = (preferences or {}).get("quiet_hours") or {}
    return _time(quiet.get("start"), DEFAULT_QUIET[0]), _time(quiet.get("end"), DEFAULT_QUIET[1])


def digest_time(preferences: dict[str, Any] | None) -> dt.time:
    return _time((preferences or {}).get("digest_time"), DEFAULT_DIGEST_TIME)


def _inside(t: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False  # no quiet hours
    if start < end:
        return start <= t < end
    return t >= start or t < end  # across midnight


def in_quiet_hours(now: dt.datetime, tz: str, preferences: dict[str, Any] | None) -> bool:
    start, end = quiet_window(preferences)
    return _inside(now.astimezone(ZoneInfo(tz)).time(), start, end)


def next_allowed(now: dt.datetime, tz: str, preferences: dict[str, Any] | None) -> dt.datetime:
    """``now`` if outside quiet hours, else the end of the current quiet period (aware, UTC)."""
    if not in_quiet_hours(now, tz, preferences):
        return now
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    _, end = quiet_window(preferences)
    day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)
