"""How much of a long video's event the dense-30 protocol can see at all.

Dense-30 takes 10 clips at fixed times, clip i starting at (D - L) * i / 10 (PySlowFast), so
the event of a long AVSynth video (2-4 s somewhere in 30-60 s) may fall between clips. A model
can only be right on a video if some clip holds enough of the event, so the share of videos
whose *best* clip holds little of it bounds what dense-30 accuracy any heavy model reaches.
This module measures that from the generator's specs alone (no rendering, no model): the
"fill" of a clip is the share of the clip the event covers, the quantity
``offline.evaluation.long.window_readings`` reports per window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Fill buckets of a video's best dense clip: (name, low inclusive, high exclusive).
BEST_FILL_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("none", 0.0, 1e-9),
    ("< 0.3", 1e-9, 0.3),
    ("0.3 - 0.6", 0.3, 0.6),
    (">= 0.6", 0.6, float("inf")),
)


@dataclass(frozen=True)
class EventTiming:
    duration_s: float
    event_start_s: float
    event_end_s: float


def dense_starts(duration_s: float, clip_s: float, num_clips: int = 10) -> list[float]:
    """Start times of the dense protocol's clips (``service.media.geometry.dense_windows``)."""
    free = max(duration_s - clip_s, 0.0)
    return [free * i / num_clips for i in range(num_clips)]


def best_dense_fill(video: EventTiming, clip_s: float, num_clips: int = 10) -> float:
    """The largest share of one dense clip that the event covers (0 when no clip touches it)."""
    best = 0.0
    for start in dense_starts(video.duration_s, clip_s, num_clips):
        overlap = min(start + clip_s, video.event_end_s) - max(start, video.event_start_s)
        best = max(best, max(overlap, 0.0) / clip_s)
    return best


def fill_bucket(fill: float) -> str:
    return next(name for name, lo, hi in BEST_FILL_BUCKETS if lo <= fill < hi)


def bucket_shares(fills: Iterable[float]) -> dict[str, float]:
    """Share of videos per best-fill bucket, in ``BEST_FILL_BUCKETS`` order."""
    names = [fill_bucket(f) for f in fills]
    if not names:
        raise ValueError("no videos")
    return {name: names.count(name) / len(names) for name, _, _ in BEST_FILL_BUCKETS}


def accuracy_by_bucket(
    fills: Sequence[float], correct: Sequence[bool]
) -> dict[str, dict[str, int]]:
    """Videos and right answers per best-fill bucket (one evaluation's per-video outcomes)."""
    if len(fills) != len(correct):
        raise ValueError(f"{len(fills)} fills for {len(correct)} outcomes")
    out = {name: {"n": 0, "correct": 0} for name, _, _ in BEST_FILL_BUCKETS}
    for f, ok in zip(fills, correct, strict=True):
        cell = out[fill_bucket(f)]
        cell["n"] += 1
        cell["correct"] += int(ok)
    return out


def package_result_folders(results: Path) -> list[Path]:
    """Result folders of measured packages under ``results``: releases, then candidates, by name.

    The release gate and the dense-coverage table both list every folder found, so a new
    candidate joins them by having its result files written there.
    """
    return [f for group in ("releases", "candidates") for f in sorted((results / group).glob("*/"))]
