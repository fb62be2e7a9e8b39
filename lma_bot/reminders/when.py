"""``/lead remind <lead> <when>``: the times people type, read in the user's own timezone.

Understood (case does not matter, ``at``/``on`` are optional fillers):

- durations from now: ``in 2h``, ``in 30 minutes``, ``in 1h30m``, ``in an hour``, ``in 3 days``, ``in 2 weeks``;
- a day, optionally with a time: ``today 5pm``, ``tomorrow 9am``, ``fri 14:00``, ``next monday``,
  ``2026-12-01 09:30``, ``2026-12-01``; a day without a time means 09:00 there;
- a time alone: ``5pm``, ``at 17:30``, ``noon``: its next occurrence (today if still ahead, else tomorrow).

``<weekday>`` is the next such day, today included when the time is still ahead; ``next <weekday>`` is never
today. Wall-clock times are taken in the user's timezone, so ``tomorrow 9am`` is 9:00 there even across a
daylight-saving change; a time that does not exist that day (the hour skipped in spring) moves forward by the
gap, and one that happens twice (autumn) is the first. Durations are exact elapsed time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lma_bot.errors import InvalidInput

EXAMPLES = "`in 2h`, `in 30 minutes`, `tomorrow 9am`, `fri 14:00`, `next monday`, `2026-12-01 09:30`"
DEFAULT_TIME = dt.time(9, 0)
#: The furthest ahead a reminder may be set.
HORIZON = dt.timedelta(days=366 * 2)

_WEEKDAYS = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tues": 1,
    "tuesday": 1,
    "wed": 2,
    "weds": 2,
    "wednesday": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}
_UNITS = {
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "wk": "weeks",
    "wks": "weeks",
    "week": "weeks",
    "weeks": "weeks",
}
_DURATION_PART = re.compile(r"(\d+|an?|one)\s*([a-z]+)")
_TIME = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?$")
_DATE = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})$")


class WhenError(InvalidInput):
    """Text that is not a time we understand, or a time that has passed."""

    def __init__(self, problem: str) -> None:
        #: True when the text is not a time at all (rather than a time that has passed or is too far)
        self.unreadable = problem.startswith(("I can't read", "Say when", "`"))
        super().__init__(f"{problem}. Try for example {EXAMPLES}.", field="when")


@dataclass(frozen=True)
class Due:
    at: dt.datetime  # aware, UTC
    local: dt.datetime  # the same instant in the user's timezone
    explicit_time: bool  # the user named a time of day or a duration (quiet hours never delay those)

    def describe(self) -> str:
        """``Tue 1 Dec 2026 09:30 (Europe/Paris)``."""
        local = self.local
        return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({local.tzinfo})"


def parse_when(text: str, *, now: dt.datetime, tz: str | ZoneInfo) -> Due:
    """The instant ``text`` names, seen from ``now`` (aware) by a user in ``tz``; WhenError if none or past."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    words = " ".join(text.lower().replace(",", " ").split())
    if not words:
        raise WhenError("Say when")
    now_utc = now.astimezone(dt.UTC)
    if words.startswith("in "):
        at = now_utc + _duration(words[3:].strip(), text)
        return _checked(at, now_utc, zone, explicit=True)
    tokens = [w for w in words.split(" ") if w not in ("at", "on")]
    local_now = now_utc.astimezone(zone)
    day, rest, day_given = _day(tokens, local_now.date(), text)
    time = _time(" ".join(rest), text) if rest else None
    if time is None and not day_given:
        raise WhenError(f"I can't read `{text.strip()}` as a time")
    candidate = _at(day, time or DEFAULT_TIME, zone)
    if not day_given and candidate <= now_utc:  # a bare time: its next occurrence
        candidate = _at(day + dt.timedelta(days=1), time or DEFAULT_TIME, zone)
    if candidate <= now_utc and tokens[0] in _WEEKDAYS:  # a weekday naming today, too late: next week's
        candidate = _at(day + dt.timedelta(days=7), time or DEFAULT_TIME, zone)
    return _checked(candidate, now_utc, zone, explicit=time is not None)


def _duration(spec: str, original: str) -> dt.timedelta:
    compact = spec.replace(" and ", " ")
    total = dt.timedelta()
    pos = 0
    found = False
    for match in _DURATION_PART.finditer(compact):
        if compact[pos : match.start()].strip():
            break
        amount_text, unit_text = match.groups()
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise WhenError(f"`{unit_text}` is not a unit I know (minutes, hours, days, weeks)")
        amount = 1 if amount_text in ("a", "an", "one") else int(amount_text)
        total += dt.timedelta(**{unit: amount})
        pos = match.end()
        found = True
    if not found or compact[pos:].strip():
        raise WhenError(f"I can't read `{original.strip()}` as a duration")
    if total <= dt.timedelta():
        raise WhenError("That is not in the future")
    return total


def _day(tokens: list[str], today: dt.date, original: str) -> tuple[dt.date, list[str], bool]:
    """(day, the tokens left for the time, whether a day was named)."""
    if not tokens:
        return today, [], False
    first = tokens[0]
    if first == "today" or first == "tonight":
        return today, tokens[1:] or (["20:00"] if first == "tonight" else []), True
    if first in ("tomorrow", "tmrw", "tmr"):
        return today + dt.timedelta(days=1), tokens[1:], True
    if first == "next" and len(tokens) > 1:
        if tokens[1] == "week":
            return _next_weekday(today, 0, strictly=True), tokens[2:], True
        if tokens[1] in _WEEKDAYS:
            return _next_weekday(today, _WEEKDAYS[tokens[1]], strictly=True), tokens[2:], True
        raise WhenError(f"I can't read `{original.strip()}` as a time")
    if first in ("this",) and len(tokens) > 1 and tokens[1] in _WEEKDAYS:
        return _next_weekday(today, _WEEKDAYS[tokens[1]], strictly=False), tokens[2:], True
    if first in _WEEKDAYS:
        return _next_weekday(today, _WEEKDAYS[first], strictly=False), tokens[1:], True
    date = _DATE.match(first)
    if date:
        try:
            day = dt.date(int(date["y"]), int(date["mo"]), int(date["d"]))
        except ValueError:
            raise WhenError(f"`{first}` is not a date") from None
        return day, tokens[1:], True
    return today, tokens, False


def _next_weekday(today: dt.date, weekday: int, *, strictly: bool) -> dt.date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and strictly:
        ahead = 7
    return today + dt.timedelta(days=ahead)


def _time(text: str, original: str) -> dt.time:
    if text in ("noon", "midday"):
        return dt.time(12, 0)
    if text == "midnight":
        return dt.time(0, 0)
    if text in ("morning",):
        return dt.time(9, 0)
    if text in ("afternoon",):
        return dt.time(14, 0)
    if text in ("evening", "tonight"):
        return dt.time(18, 0)
    match = _TIME.match(text)
    if match is None:
        raise WhenError(f"I can't read `{original.strip()}` as a time")
    hour = int(match["h"])
    minute = int(match["m"] or 0)
    ampm = (match["ampm"] or "").replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            raise WhenError(f"`{text}` is not a time of day")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif match["m"] is None:
        raise WhenError(f"`{text}` needs am/pm or minutes, e.g. `{hour}am`, `{hour}pm` or `{hour}:00`")
    if hour > 23 or minute > 59:
        raise WhenError(f"`{text}` is not a time of day")
    return dt.time(hour, minute)


def _at(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of a wall-clock time in ``zone``. fold=0 reads a repeated time as its first occurrence
    and a skipped one with the offset before the gap, which moves it forward by the gap (02:30 -> 03:30)."""
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)


def _checked(at: dt.datetime, now: dt.datetime, zone: ZoneInfo, *, explicit: bool) -> Due:
    local = at.astimezone(zone)
    if at <= now:
        raise WhenError(f"{local:%a} {local.day} {local:%b %Y %H:%M} has already passed")
    if at - now > HORIZON:
        raise WhenError("That is more than two years away")
    return Due(at=at, local=local, explicit_time=explicit)
