"""Temporal window selection: clamping, non-maximum suppression and adaptive K.

All functions are pure numpy so that every policy shares one definition of "a window" and
the tests can pin the geometry down without decoding anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.media.geometry import clamp_start, snippet_times


def window_start(center_s: float, clip_s: float, duration_s: float) -> float:
    """Start of a clip of length ``clip_s`` centred on ``center_s``, kept inside [0, D - L].

    Videos shorter than one clip start at 0 (the decoder pads by repeating frames).
    """
    return float(clamp_start(center_s - clip_s / 2.0, clip_s, duration_s))


def uniform_starts(duration_s: float, clip_s: float, k: int) -> list[float]:
    """K evenly spaced, clamped clip starts (centres at (i + 0.5) * D / K)."""
    return [window_start(c, clip_s, duration_s) for c in snippet_times(duration_s, k)]


def temporal_nms(
    scores: Sequence[float] | np.ndarray,
    starts: Sequence[float] | np.ndarray,
    clip_s: float,
    k: int,
    max_overlap: float = 0.5,
) -> list[int]:
    """Greedy NMS over candidate clips: highest score first, overlap with any kept clip <= max_overlap.

    Two clips of length L overlap by ``max(0, L - |s_i - s_j|) / L``. Ties break towards the
    earlier candidate so that the selection is deterministic.
    Returns the kept candidate indices in selection order (at most ``k``).
    """
    scores_arr = np.asarray(scores, dtype=np.float64)
    starts_arr = np.asarray(starts, dtype=np.float64)
    if scores_arr.shape != starts_arr.shape:
        raise ValueError("scores and starts must have the same shape")
    # Stable sort on -score keeps the lower index first among equal scores.
    order = np.argsort(-scores_arr, kind="stable")
    min_gap = (1.0 - max_overlap) * clip_s
    kept: list[int] = []
    for i in order:
        if len(kept) >= k:
            break
        if all(abs(starts_arr[i] - starts_arr[j]) >= min_gap - 1e-9 for j in kept):
            kept.append(int(i))
    return kept


def softmax(x: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=axis, keepdims=True)
    return out


def adaptive_k(saliency: np.ndarray, ranked: Sequence[int], mass: float, k_max: int) -> int:
    """Smallest K whose selected snippets hold ``mass`` of the softmax saliency (at most k_max)."""
    p = softmax(saliency)
    total = 0.0
    for n, idx in enumerate(ranked[:k_max], start=1):
        total += float(p[idx])
        if total >= mass:
            return n
    return min(k_max, len(ranked))
