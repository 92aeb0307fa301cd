"""Fitting a head's calibration and abstention rules on validation clips.

``calibrate_package`` decodes a validation set exactly as the server does (``service.media``),
runs the package's served forward, then

1. fits the temperature (one scalar, so the ranking and the accuracy do not change): by default
   the T that minimises the expected calibration error on a log grid; ``objective="nll"`` is
   Guo et al.'s (2017) negative log-likelihood fit. NLL is dominated by the few confident
   mistakes of a 97%-accurate model (AVSynth's drift_slow / drift_fast confusions): it raised
   T until the correct answers were under-confident, and ECE rose (0.032 -> 0.056 on
   ``short_val`` for the first 1.2.0 candidate; 0.025 -> 0.028 on ``short_test`` for 1.1.0).
   The ECE fit targets the quantity users read: how often an answer of confidence p is right.
   Neither fit may go below ``min_temperature`` (1: never sharpen). Sharpening corrects in-domain
   under-confidence (that candidate's ECE-best T on ``short_val`` was 0.5), but it raises the
   confidence of everything, inputs far from the training data included; the cost of not
   sharpening is a few abstentions, which the threshold rule already bounds;
2. measures the expected calibration error before and after (torchmetrics, 15 equal-width bins);
3. picks ``min_confidence``: the largest threshold on the top known-class probability that
   refuses at most ``target_false_abstention`` of new clips that do show a class, in
   expectation (conformal risk control; a clip whose argmax is the background outcome counts
   as refused too);
4. measures how the rules behave on the set's background clips and with the audio removed.

The result is written into the package's ``config.json`` (``models.package.set_calibration``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from models import ModelPackage, load_package
from models.calibration import HeadCalibration
from models.package_edit import set_calibration
from offline.data.avsynth.generate import read_manifest
from offline.evaluation.short import _classify, _geometry, decode_clips

ECE_BINS = 15
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)


TEMPERATURE_GRID = np.geomspace(0.25, 4.0, 121)  # ECE fit: T steps of 2.3%


@dataclass(frozen=True)
class CalibrationConfig:
    target_false_abstention: float = 0.02
    objective: Literal["ece", "nll"] = "ece"  # what the temperature minimises
    min_temperature: float = 1.0  # never sharpen (see the module docstring)
    batch_size: int = 16
    workers: int = 1
    limit: int | None = None


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising NLL(softmax(logits / T), labels) (LBFGS on log T)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def fit_temperature_ece(
    logits: np.ndarray, labels: np.ndarray, min_temperature: float = 0.0
) -> float:
    """The T >= ``min_temperature`` on ``TEMPERATURE_GRID`` (plus ``min_temperature`` itself)
    with the lowest ECE; the NLL fit breaks ties near it."""
    grid = TEMPERATURE_GRID[min_temperature <= TEMPERATURE_GRID]
    if min_temperature > 0:
        grid = np.unique(np.append(grid, min_temperature))
    eces = np.array([expected_calibration_error(softmax_t(logits, t), labels) for t in grid])
    best = np.flatnonzero(eces <= eces.min() + 1e-6)
    anchor = np.log(fit_temperature(logits, labels))
    return float(grid[best[np.argmin(np.abs(np.log(grid[best]) - anchor))]])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-label ECE with equal-width bins (torchmetrics' ``l1`` norm)."""
    p = torch.as_tensor(probs, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    return float(
        multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=ECE_BINS, norm="l1")
    )


def softmax_t(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def refused(probs: np.ndarray, background: int | None, threshold: float) -> np.ndarray:
    """[N] bool: the rules' abstention (background wins, or the top known class is too weak)."""
    known = probs if background is None else np.delete(probs, background, axis=1)
    out: np.ndarray = known.max(axis=1) < threshold
    if background is not None:
        out |= probs.argmax(axis=1) == background
    return out


def choose_min_confidence(
    probs: np.ndarray, labels: np.ndarray, background: int | None, target: float
) -> float:
    """Largest grid threshold that keeps false abstentions on *new* class clips <= ``target``
    in expectation: conformal risk control (Angelopoulos et al. 2022), (refused + 1) / (n + 1)
    <= target on the n validation class clips. The plain rule (refused / n <= target) sits at
    the edge on its own clips, and fresh clips then exceed the target as often as not."""
    known = labels != background if background is not None else np.ones(len(labels), bool)
    n = int(known.sum())
    best = 0.0
    for t in THRESHOLD_GRID:
        if (refused(probs[known], background, float(t)).sum() + 1) / (n + 1) <= target:
            best = float(t)
    return best


def pooled(probs: np.ndarray, names: Sequence[str], groups: Sequence[Sequence[str]]) -> np.ndarray:
    """Scores of each audio group replaced by the group's mean (what the server does w/o audio)."""
    out = probs.copy()
    for g in groups:
        idx = [names.index(n) for n in g]
        out[:, idx] = out[:, idx].mean(axis=1, keepdims=True)
    return out


@dataclass
class ClipScores:
    """A labelled clip set scored by a package's first head, with and without its audio."""

    names: list[str]  # the head's labels
    labels: np.ndarray  # [N] indices into names
    logits: np.ndarray  # [N, C]
    logits_silent: np.ndarray  # [N, C]: the same clips with the audio removed
    background: int | None  # index of the background outcome (set and head both have it)
    audio_groups: list[list[str]]

    @property
    def known(self) -> np.ndarray:
        return (
            self.labels != self.background
            if self.background is not None
            else np.ones(len(self.labels), bool)
        )


def score_clips(
    package: ModelPackage,
    data_dir: Path,
    cfg: CalibrationConfig = CalibrationConfig(),
    on_clip: Callable[[], None] | None = None,
) -> ClipScores:
    """Decode ``data_dir``'s clips as the server does and run the package's served forward."""
    head = package.heads[0]
    names = list(package.labels[head.name])
    records = read_manifest(data_dir)[: cfg.limit]
    if not records:
        raise ValueError(f"{data_dir}: the manifest lists no clips")
    labels_file = data_dir / "labels.json"
    meta = json.loads(labels_file.read_text()) if labels_file.is_file() else {}
    set_names = meta.get("names") or names
    missing = sorted({set_names[int(r["label"])] for r in records} - set(names))
    if missing:
        raise ValueError(f"the package's head has no labels {missing} of {data_dir}")
    y = np.array([names.index(set_names[int(r["label"])]) for r in records])
    bg_name = meta.get("background")
    groups = [g for g in meta.get("audio_groups") or [] if all(n in names for n in g)]
    spec, short_side = _geometry(package)
    files = [data_dir / r["file"] for r in records]
    clips = decode_clips(files, spec, short_side, cfg.workers, on_clip)
    cut = slice(0, head.num_classes)
    logits = _classify(package, clips, cfg.batch_size)[0][:, cut]
    clips.audio[:] = 0.0  # the same clips as a video without an audio track
    silent = _classify(package, clips, cfg.batch_size)[0][:, cut]
    bg = names.index(bg_name) if bg_name in names else None
    return ClipScores(names, y, logits, silent, bg, groups)


def calibrate_package(
    package_dir: Path,
    data_dir: Path,
    cfg: CalibrationConfig = CalibrationConfig(),
    on_clip: Callable[[], None] | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Fit, measure and (``write``) store the first head's rules; returns the report."""
    package: ModelPackage = load_package(package_dir)
    s = score_clips(package, data_dir, cfg, on_clip)
    y, bg, known = s.labels, s.background, s.known
    if cfg.objective == "ece":
        temperature = fit_temperature_ece(s.logits, y, cfg.min_temperature)
    else:
        temperature = max(fit_temperature(s.logits, y), cfg.min_temperature)
    raw, cal = softmax_t(s.logits, 1.0), softmax_t(s.logits, temperature)
    threshold = choose_min_confidence(cal, y, bg, cfg.target_false_abstention)
    silent = pooled(softmax_t(s.logits_silent, temperature), s.names, s.audio_groups)
    sound_cols = [s.names.index(n) for g in s.audio_groups for n in g]
    metrics: dict[str, Any] = {
        "data": str(data_dir),
        "clips": len(y),
        "class_clips": int(known.sum()),
        "background_clips": int((~known).sum()),
        "top1": round(float((cal.argmax(1) == y).mean()), 4),
        "temperature_objective": cfg.objective,
        "min_temperature": cfg.min_temperature,
        "ece_before": round(expected_calibration_error(raw, y), 4),
        "ece": round(expected_calibration_error(cal, y), 4),
        "false_abstention": round(float(refused(cal[known], bg, threshold).mean()), 4),
        "background_abstention": (
            round(float(refused(cal[~known], bg, threshold).mean()), 4) if (~known).any() else None
        ),
        "silent_max_sound_class_score": (
            round(float(silent[:, sound_cols].max()), 4) if sound_cols else None
        ),
    }
    rules = HeadCalibration(
        temperature=round(temperature, 4),
        background=s.names[bg] if bg is not None else None,
        min_confidence=threshold,
        audio_groups=tuple(tuple(g) for g in s.audio_groups),
        metrics=metrics,
    )
    if write:
        set_calibration(package_dir, {package.heads[0].name: rules})
    return {"head": package.heads[0].name, **rules.to_dict()}
