"""Turn per-window logits into video-level scores, per output head.

- Window policies (glance, heuristic, uniform): saliency-weighted average of window logits plus
  beta times the glance head's logits where a glance ran, then softmax (or sigmoid for a
  multi-label head): p = softmax(sum_k w_k z_k + beta * g), w = softmax(s_k / tau).
- Dense: the official protocol averages per-view probabilities over the 30 views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.schemas import LabelScore
from service.selection import softmax


@dataclass(frozen=True)
class HeadLayout:
    """Where one head's logits sit in the model's concatenated output."""

    name: str
    start: int
    labels: tuple[str, ...]
    multi_label: bool

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def stop(self) -> int:
        return self.start + self.size


def layout_heads(heads: Sequence[tuple[str, Sequence[str], bool]]) -> list[HeadLayout]:
    """heads: (name, labels, multi_label) in model output order."""
    out, start = [], 0
    for name, labels, multi in heads:
        out.append(HeadLayout(name=name, start=start, labels=tuple(labels), multi_label=multi))
        start += len(labels)
    return out


def _activate(z: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
        return out
    return softmax(z, axis=-1)


def fuse_windows(
    logits: np.ndarray,
    weights: np.ndarray,
    layout: Sequence[HeadLayout],
    glance_logits: np.ndarray | None = None,
    beta: float = 0.0,
) -> dict[str, np.ndarray]:
    """logits [K, C], weights [K] summing to 1, glance_logits [C] or None -> probabilities per head."""
    logits = np.asarray(logits, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if logits.ndim != 2 or w.shape != (logits.shape[0],):
        raise ValueError(f"bad shapes: logits {logits.shape}, weights {w.shape}")
    z = (w[:, None] * logits).sum(axis=0)
    if glance_logits is not None and beta:
        z = z + beta * np.asarray(glance_logits, dtype=np.float64)
    return {h.name: _activate(z[h.start : h.stop], h.multi_label) for h in layout}


def glance_only(glance_logits: np.ndarray, layout: Sequence[HeadLayout]) -> dict[str, np.ndarray]:
    """Scores from the glance head alone (early exit with no heavy window)."""
    g = np.asarray(glance_logits, dtype=np.float64)
    return {h.name: _activate(g[h.start : h.stop], h.multi_label) for h in layout}


def average_views(logits: np.ndarray, layout: Sequence[HeadLayout]) -> dict[str, np.ndarray]:
    """Dense protocol: mean over views of per-view probabilities. logits [V, C]."""
    logits = np.asarray(logits, dtype=np.float64)
    return {
        h.name: _activate(logits[:, h.start : h.stop], h.multi_label).mean(axis=0) for h in layout
    }


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> list[LabelScore]:
    """Highest-scoring labels, ties broken by label index."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [LabelScore(label=labels[i], index=int(i), score=float(probs[i])) for i in order]
