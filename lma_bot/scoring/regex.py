"""The regular expressions a ``matches`` condition may use: a small, safe subset that PostgreSQL (``~*``)
and Python (:func:`python_pattern`) read the same way.

Allowed: literals, ``.``, classes ``[a-z0-9_]`` / ``[^...]``, the escapes ``\\d \\D \\w \\W \\s \\S`` and escaped
punctuation, anchors ``^`` ``$``, groups ``(...)`` / ``(?:...)``, alternation ``|``, and the quantifiers
``? * + {m} {m,} {m,n}`` (bounds at most 100). Refused, with the reason: backreferences, lookaround and other
``(?`` constructs, a quantifier on a group that contains a quantifier or an alternation (the shapes that
backtrack catastrophically), more than 4 unbounded quantifiers, and patterns over 200 characters.
Matching is case-insensitive and ``.`` matches any character, in both engines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LENGTH = 200
MAX_BOUND = 100
MAX_UNBOUNDED = 4

_CLASS_ESCAPES = frozenset("dDwWsS")
_PUNCT = frozenset(".^$*+?()[]{}|\\-/ ")


class UnsafePattern(ValueError):
    pass


@dataclass
class _Group:
    has_quantifier: bool = False
    has_alternation: bool = False


def check_pattern(pattern: str) -> None:
    """Raise :class:`UnsafePattern` unless ``pattern`` is in the safe subset."""
    if not pattern:
        raise UnsafePattern("an empty pattern")
    if len(pattern) > MAX_LENGTH:
        raise UnsafePattern(f"a pattern can be at most {MAX_LENGTH} characters (this one has {len(pattern)})")
    stack: list[_Group] = [_Group()]
    unbounded = 0
    # What the previous token was: "atom", "group" (just closed; its _Group in last_group), or None
    previous: str | None = None
    last_group: _Group | None = None
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise UnsafePattern("a pattern cannot end with a backslash")
            e = pattern[i + 1]
            if e.isdigit() or e == "k":
                raise UnsafePattern(f"backreferences (\\{e}) are not allowed")
            if e not in _CLASS_ESCAPES and e not in _PUNCT:
                raise UnsafePattern(
                    f"the escape \\{e} is not supported; use \\d \\w \\s or escape punctuation"
                )
            i += 2
            previous = "atom"
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\":
                    if j + 1 >= n:
                        raise UnsafePattern("an unterminated character class")
                    e = pattern[j + 1]
                    if e not in _CLASS_ESCAPES and e not in _PUNCT:
                        raise UnsafePattern(f"the escape \\{e} is not supported inside [...]")
                    j += 2
                    continue
                if pattern[j] == "[":
                    raise UnsafePattern("nested [ inside a character class; escape it as \\[")
                j += 1
            if j >= n:
                raise UnsafePattern("an unterminated character class [")
            i = j + 1
            previous = "atom"
            continue
        if c == "(":
            if pattern.startswith("(?:", i):
                i += 3
            elif pattern.startswith("(?", i):
                raise UnsafePattern("lookaround, flags and named groups (?...) are not allowed")
            else:
                i += 1
            stack.append(_Group())
            previous = None
            continue
        if c == ")":
            if len(stack) == 1:
                raise UnsafePattern("an unbalanced )")
            closed = stack.pop()
            stack[-1].has_quantifier |= closed.has_quantifier
            stack[-1].has_alternation |= closed.has_alternation
            last_group = closed
            previous = "group"
            i += 1
            continue
        if c == "|":
            stack[-1].has_alternation = True
            previous = None
            i += 1
            continue
        if c in "*+?{":
            bounded = True
            if c == "{":
                m = re.match(r"\{(\d{1,3})(,(\d{0,3}))?\}", pattern[i:])
                if m is None:
                    raise UnsafePattern(
                        "a { must be a bound like {2}, {2,} or {2,5}; escape a literal one as \\{"
                    )
                low = int(m.group(1))
                high = m.group(3)
                if m.group(2) and not high:
                    bounded = False
                elif high and int(high) < low:
                    raise UnsafePattern(f"the bound {m.group(0)} has its maximum below its minimum")
                if low > MAX_BOUND or (high and int(high) > MAX_BOUND):
                    raise UnsafePattern(f"bounds can be at most {MAX_BOUND}")
                width = len(m.group(0))
            else:
                bounded = c == "?"
                width = 1
            if previous is None:
                raise UnsafePattern(f"the quantifier {c} has nothing to repeat")
            if previous == "group":
                assert last_group is not None
                if last_group.has_quantifier or last_group.has_alternation:
                    raise UnsafePattern(
                        "a repeated group may not contain a quantifier or | (catastrophic backtracking)"
                    )
            if not bounded:
                unbounded += 1
                if unbounded > MAX_UNBOUNDED:
                    raise UnsafePattern(f"at most {MAX_UNBOUNDED} unbounded quantifiers (*, +, {{m,}})")
            stack[-1].has_quantifier = True
            i += width
            if i < n and pattern[i] in "?+":
                raise UnsafePattern("lazy and possessive quantifiers are not supported")
            previous = "quantified"
            continue
        if c == "}" or c == "]":
            raise UnsafePattern(f"an unmatched {c}; escape it as \\{c}")
        previous = "atom"
        i += 1
    if len(stack) != 1:
        raise UnsafePattern("an unbalanced (")
    try:
        re.compile(python_pattern(pattern))
    except re.error as exc:
        raise UnsafePattern(str(exc)) from None


def python_pattern(pattern: str) -> str:
    """``pattern`` for Python's ``re`` with PostgreSQL's meaning of ``$`` (the very end only)."""
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]" and out[-1] not in ("[", "[^"):
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
            out.append(c)
        elif c == "$":
            out.append(r"\Z")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def compile_python(pattern: str) -> re.Pattern[str]:
    return re.compile(python_pattern(pattern), re.IGNORECASE | re.DOTALL)
