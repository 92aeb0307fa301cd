"""Window-selection policies: which clips (time + crop box) the heavy model looks at.

One interface, four policies:
- ``glance``: a trained glance network scores every snippet; top-K windows after temporal NMS,
  optional adaptive K and early exit; crops follow the network's patch policy.
- ``heuristic``: no training; saliency from audio energy/onsets and visual change; centre crops.
- ``uniform``: K evenly spaced windows, centre crops.
- ``dense``: the official 10 temporal x 3 spatial views (the accuracy reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from service.media import box_from_uv, center_box, dense_windows
from service.media.types import ClipSpec, ClipWindow, CropBox, GlanceSnippets, MediaInfo
from service.saliency import HeuristicWeights, heuristic_saliency
from service.schemas import PolicyName
from service.selection import adaptive_k, softmax, temporal_nms, uniform_starts, window_start


@dataclass(frozen=True)
class PolicyConfig:
    default_k: int = 4
    max_overlap: float = 0.5  # temporal NMS: selected clips overlap by at most this fraction
    adaptive_mass: float | None = None  # stop adding windows once softmax saliency mass >= this
    early_exit_threshold: float | None = None  # glance head max prob >= this -> early exit
    early_exit_k: int = 1  # windows still classified on early exit (0: glance head alone)
    fusion_temperature: float = 1.0  # w = softmax(saliency / tau) over the selected windows
    # Glance patch side as a fraction of the short side; None: the glance network's own (the
    # value its patch policy was trained with).
    rho: float | None = None
    # A selected window may move by up to this fraction of a clip to start on a keyframe
    # (no run-up decode from an earlier one); its snippet stays inside it. Off by default:
    # 0.25 saved decoding but cost the shipped model one long_test video (docs/benchmarks.md).
    window_snap: float = 0.0
    heuristic: HeuristicWeights = field(default_factory=HeuristicWeights)


@dataclass(frozen=True)
class Geometry:
    """The heavy model's input geometry, from the model package's preprocessing spec."""

    clip: ClipSpec  # crop_size is the window policies' input size
    short_side: int = 256
    test_crop_size: int = 256  # dense views


@dataclass
class WindowPlan:
    policy: PolicyName
    windows: list[ClipWindow]
    weights: np.ndarray  # fusion weight per window, sums to 1 (empty when no window)
    crop_size: int
    saliency: np.ndarray | None = None  # raw per-window saliency (None for uniform/dense)
    glance_logits: np.ndarray | None = None  # [C] when a glance head ran
    early_exit: bool = False
    dense: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GlanceScores:
    saliency: np.ndarray  # [T] logits
    logits: np.ndarray | None  # [C] glance-level class logits
    state: Any = None  # whatever locate() needs (feature maps)


class GlanceScorer(Protocol):
    """What the glance policy needs from a glance network (see service.glance)."""

    def score(self, snippets: GlanceSnippets) -> GlanceScores: ...

    def locate(self, scores: GlanceScores, indices: Sequence[int]) -> np.ndarray:
        """Patch corner fractions (u, v) in [0, 1] for the selected snippets: [K, 2]."""
        ...

    def max_class_prob(self, scores: GlanceScores) -> float: ...


@dataclass(frozen=True)
class PlanRequest:
    info: MediaInfo
    geometry: Geometry
    k: int
    snippets: GlanceSnippets | None = None


class Policy(Protocol):
    name: PolicyName
    uses_snippets: bool

    def plan(self, req: PlanRequest) -> WindowPlan: ...


def _select(
    saliency: np.ndarray, req: PlanRequest, cfg: PolicyConfig
) -> tuple[list[int], list[float]]:
    """Top-K snippets after temporal NMS (and adaptive K): indices and clamped clip starts."""
    assert req.snippets is not None
    clip_s = req.geometry.clip.duration_s
    duration = req.info.duration_s
    starts = [window_start(float(c), clip_s, duration) for c in req.snippets.times_s]
    kept = temporal_nms(saliency, starts, clip_s, req.k, cfg.max_overlap)
    if cfg.adaptive_mass is not None and kept:
        kept = kept[: adaptive_k(saliency, kept, cfg.adaptive_mass, req.k)]
    return kept, [starts[i] for i in kept]


def _windows(
    starts: Sequence[float], boxes: Sequence[CropBox], req: PlanRequest, cfg: PolicyConfig
) -> list[ClipWindow]:
    tolerance = max(cfg.window_snap, 0.0) * req.geometry.clip.duration_s
    return [ClipWindow(s, b, tolerance) for s, b in zip(starts, boxes, strict=True)]


def _weights(saliency: np.ndarray, cfg: PolicyConfig) -> np.ndarray:
    return softmax(saliency, cfg.fusion_temperature) if saliency.size else saliency


class UniformPolicy:
    name: PolicyName = "uniform"
    uses_snippets = False

    def plan(self, req: PlanRequest) -> WindowPlan:
        g = req.geometry
        starts = uniform_starts(req.info.duration_s, g.clip.duration_s, req.k)
        # Short videos collapse to fewer distinct windows; classify each distinct one once.
        starts = sorted(set(starts))
        box = center_box(req.info, short_side=g.short_side, crop=g.clip.crop_size)
        windows = [ClipWindow(start_s=s, box=box) for s in starts]
        return WindowPlan(
            policy=self.name,
            windows=windows,
            weights=np.full(len(windows), 1.0 / len(windows)),
            crop_size=g.clip.crop_size,
        )


class DensePolicy:
    name: PolicyName = "dense"
    uses_snippets = False

    def plan(self, req: PlanRequest) -> WindowPlan:
        g = req.geometry
        spec = ClipSpec(
            num_frames=g.clip.num_frames,
            sampling_rate=g.clip.sampling_rate,
            target_fps=g.clip.target_fps,
            crop_size=g.test_crop_size,
            audio_sample_rate=g.clip.audio_sample_rate,
        )
        windows = dense_windows(req.info, spec, short_side=g.short_side, crop=g.test_crop_size)
        return WindowPlan(
            policy=self.name,
            windows=windows,
            weights=np.full(len(windows), 1.0 / len(windows)),
            crop_size=g.test_crop_size,
            dense=True,
        )


class HeuristicPolicy:
    name: PolicyName = "heuristic"
    uses_snippets = True

    def __init__(self, cfg: PolicyConfig) -> None:
        self.cfg = cfg

    def plan(self, req: PlanRequest) -> WindowPlan:
        assert req.snippets is not None, "heuristic policy needs glance snippets"
        sal = heuristic_saliency(req.snippets, self.cfg.heuristic)
        kept, starts = _select(sal, req, self.cfg)
        g = req.geometry
        box = center_box(req.info, short_side=g.short_side, crop=g.clip.crop_size)
        return WindowPlan(
            policy=self.name,
            windows=_windows(starts, [box] * len(starts), req, self.cfg),
            weights=_weights(sal[kept], self.cfg),
            crop_size=g.clip.crop_size,
            saliency=sal[kept],
            extra={"snippet_saliency": sal},
        )


class GlancePolicy:
    name: PolicyName = "glance"
    uses_snippets = True

    def __init__(self, cfg: PolicyConfig, scorer: GlanceScorer, default_rho: float = 0.6) -> None:
        self.cfg = cfg
        self.scorer = scorer
        self.rho = cfg.rho if cfg.rho is not None else default_rho

    def plan(self, req: PlanRequest) -> WindowPlan:
        assert req.snippets is not None, "glance policy needs glance snippets"
        scores = self.scorer.score(req.snippets)
        sal = np.asarray(scores.saliency, dtype=np.float64)
        early = (
            self.cfg.early_exit_threshold is not None
            and scores.logits is not None
            and self.scorer.max_class_prob(scores) >= self.cfg.early_exit_threshold
        )
        k = min(self.cfg.early_exit_k, req.k) if early else req.k
        kept, starts = (
            _select(sal, PlanRequest(req.info, req.geometry, k, req.snippets), self.cfg)
            if k > 0
            else ([], [])
        )
        uv = self.scorer.locate(scores, kept) if kept else np.zeros((0, 2))
        boxes = [box_from_uv(req.info, float(u), float(v), self.rho) for u, v in uv]
        return WindowPlan(
            policy=self.name,
            windows=_windows(starts, boxes, req, self.cfg),
            weights=_weights(sal[kept], self.cfg),
            crop_size=req.geometry.clip.crop_size,
            saliency=sal[kept],
            glance_logits=None if scores.logits is None else np.asarray(scores.logits),
            early_exit=bool(early),
            extra={"snippet_saliency": sal, "uv": uv},
        )
