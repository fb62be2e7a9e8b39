"""Temperature (cold / warm / hot) from the score, per organization thresholds, with hysteresis.

Going up is immediate: ``score >= hot`` is hot, ``score >= warm`` is at least warm. Going down waits until the
score is ``hysteresis`` points below the line: a hot lead stays hot down to ``hot - hysteresis``, a warm (or
hot) one stays at least warm down to ``warm - hysteresis``. So a lead bouncing at the line changes
temperature, and alerts, once. Entering hot from cold or warm is what raises the hot-lead alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_WARM = 20
DEFAULT_HOT = 50
DEFAULT_HYSTERESIS = 5


@dataclass(frozen=True)
class Thresholds:
    warm: int = DEFAULT_WARM
    hot: int = DEFAULT_HOT
    hysteresis: int = DEFAULT_HYSTERESIS

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Thresholds:
        scoring = (settings or {}).get("scoring") or {}
        warm = int(scoring.get("warm_threshold", DEFAULT_WARM))
        hot = int(scoring.get("hot_threshold", max(DEFAULT_HOT, warm)))
        return cls(
            warm=warm,
            hot=max(hot, warm),
            hysteresis=max(0, int(scoring.get("hysteresis", DEFAULT_HYSTERESIS))),
        )


def next_temperature(previous: str, score: int, t: Thresholds) -> str:
    if score >= t.hot or (previous == "hot" and score >= t.hot - t.hysteresis):
        return "hot"
    if score >= t.warm or (previous in ("hot", "warm") and score >= t.warm - t.hysteresis):
        return "warm"
    return "cold"


def temperature_sql(previous: str, score: str, t: Thresholds) -> str:
    """:func:`next_temperature` as a SQL expression over the SQL expressions ``previous`` and ``score``."""
    hot, warm, h = int(t.hot), int(t.warm), int(t.hysteresis)
    return (
        f"(CASE WHEN {score} >= {hot} OR ({previous} = 'hot' AND {score} >= {hot - h}) THEN 'hot' "
        f"WHEN {score} >= {warm} OR ({previous} IN ('hot', 'warm') AND {score} >= {warm - h}) THEN 'warm' "
        "ELSE 'cold' END)"
    )
