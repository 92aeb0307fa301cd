"""Small statistics shared by the evaluations."""

from __future__ import annotations

import math
from typing import Any


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sensible at 0 %, 100 % and small n)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy(correct: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(correct, n)
    return {
        "n": n,
        "correct": correct,
        "top1": correct / n if n else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
    }
