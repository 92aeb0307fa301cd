"""Short-clip evaluation: one centre view per clip, each model exactly as it is served.

A clip is the window centred in time (``window_start`` of the clip's midpoint) with the
"resize the short side, centre crop" box of the model's preprocessing, decoded by
``service.media.read_clips`` and classified by the package's ``ServingModel`` (the model's own
frame sampling, normalisation and log-mel). Clips are decoded once per distinct clip geometry
and shared by the models that use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import ModelPackage, load_package
from models.flops import model_gmacs
from offline.data.avsynth.classes import CLASSES, pairs
from offline.data.avsynth.generate import read_manifest
from offline.evaluation.stats import accuracy
from offline.provenance import machine
from service.media import MediaPolicy, center_box, probe, read_clips
from service.media.types import ClipSpec, ClipWindow
from service.selection import window_start


@dataclass(frozen=True)
class ShortEvalConfig:
    limit: int | None = None
    batch_size: int = 16
    workers: int = 1  # decode threads
    videos_dir: Path | None = None  # root of a list's relative paths (user sources)


@dataclass
class _Decoded:
    frames: np.ndarray  # uint8 [N, T, S, S, 3]
    audio: np.ndarray  # float32 [N, A]
    seconds: float  # total decode wall time


def _geometry(package: ModelPackage) -> tuple[ClipSpec, int]:
    pre = package.config.preprocessing
    return ClipSpec(**pre.clip_spec()), pre.short_side  # type: ignore[arg-type]


def _decode_one(path: Path, spec: ClipSpec, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    policy = MediaPolicy()
    info = probe(path, policy)
    start = window_start(info.duration_s / 2, spec.duration_s, info.duration_s)
    box = center_box(info, short_side=short_side, crop=spec.crop_size)
    batch = read_clips(path, info, [ClipWindow(start, box)], spec, policy)
    return batch.frames[0], batch.audio[0]


def decode_clips(
    files: Sequence[Path],
    spec: ClipSpec,
    short_side: int,
    workers: int = 1,
    on_clip: Callable[[], None] | None = None,
) -> _Decoded:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        out = []
        for item in pool.map(lambda f: _decode_one(f, spec, short_side), files):
            out.append(item)
            if on_clip is not None:
                on_clip()
    return _Decoded(
        np.stack([f for f, _ in out]), np.stack([a for _, a in out]), time.perf_counter() - start
    )


def _classify(package: ModelPackage, clips: _Decoded, batch_size: int) -> tuple[np.ndarray, float]:
    model = package.serving_model().eval()
    parts = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(clips.frames), batch_size):
            frames = torch.from_numpy(clips.frames[i : i + batch_size])
            audio = torch.from_numpy(clips.audio[i : i + batch_size])
            parts.append(model(frames, audio).float().numpy())
    return np.concatenate(parts), time.perf_counter() - start


def score_model(logits: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Top-1, per-class and per-pair accuracy of ``logits [N, C]`` (columns named ``names``)."""
    col = {n: i for i, n in enumerate(names)}
    missing = [c.name for c in CLASSES if c.name not in col]
    if missing:
        raise ValueError(f"the model has no class {missing[0]!r}")
    # Ground-truth labels are AVSynth indices; compare through class names.
    target = np.array([col[CLASSES[y].name] for y in labels])
    pred = logits.argmax(axis=1)
    ok = pred == target
    per_class = {}
    for c in CLASSES:
        rows = labels == c.index
        per_class[c.name] = accuracy(int(ok[rows].sum()), int(rows.sum()))
    per_pair = {}
    for name, (a, b) in pairs().items():
        rows = (labels == a.index) | (labels == b.index)
        ia, ib = col[a.name], col[b.name]
        # Binary: which of the pair's two classes scores higher (the pair's own confusion).
        binary = np.where(logits[rows, ia] >= logits[rows, ib], ia, ib) == target[rows]
        per_pair[name] = {
            "classes": [a.name, b.name],
            "differs_in": a.differs_in,
            **accuracy(int(ok[rows].sum()), int(rows.sum())),
            "binary": accuracy(int(binary.sum()), int(rows.sum())),
        }
    return {"overall": accuracy(int(ok.sum()), len(ok)), "per_class": per_class, "pairs": per_pair}


def evaluate_short(
    data_dir: Path,
    models: Mapping[str, Path],
    cfg: ShortEvalConfig = ShortEvalConfig(),
    on_clip: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every named package on the clips of ``data_dir``; a JSON-ready report.

    ``data_dir`` is a generated AVSynth set (class pairs reported), or any user source of
    ``offline.data.sources`` (class folders, CSV / JSONL lists; scored by class name, one
    centre view of each file, list windows ignored).
    """
    if not (data_dir / "manifest.jsonl").is_file():
        return _evaluate_source(data_dir, models, cfg, on_clip)
    # Class clips only: clips of no class (``background``) are scored by ``avserve eval honesty``.
    records = [r for r in read_manifest(data_dir) if r.get("class_name") != "background"]
    records = records[: cfg.limit]
    if not records:
        raise ValueError(f"{data_dir}: the manifest lists no clips")
    files = [data_dir / r["file"] for r in records]
    labels = np.array([int(r["label"]) for r in records])
    packages = {name: load_package(path) for name, path in models.items()}
    decoded: dict[tuple[ClipSpec, int], _Decoded] = {}
    report: dict[str, Any] = {"data": str(data_dir), "clips": len(files), "machine": machine()}
    results: dict[str, Any] = {}
    for name, package in packages.items():
        spec, short_side = _geometry(package)
        key = (spec, short_side)
        if key not in decoded:
            decoded[key] = decode_clips(files, spec, short_side, cfg.workers, on_clip)
        clips = decoded[key]
        logits, model_s = _classify(package, clips, cfg.batch_size)
        head = package.heads[0]
        scores = score_model(logits, labels, package.labels[head.name])
        results[name] = _model_row(models[name], package, spec, clips, model_s) | scores
    report["models"] = results
    report["class_names"] = [c.name for c in CLASSES]
    return report


def _model_row(
    path: Path, package: ModelPackage, spec: ClipSpec, clips: _Decoded, model_s: float
) -> dict[str, Any]:
    """What every short-clip report says of one model: architecture, GMACs, timings."""
    n = len(clips.frames)
    return {
        "package": str(path),
        "architecture": package.model.config.name,
        "pathways": list(package.model.config.pathways),
        "gmacs_per_clip": round(model_gmacs(package.model.config, crop=spec.crop_size), 5),
        "decode_ms_per_clip": round(1000 * clips.seconds / n, 3),
        "model_ms_per_clip": round(1000 * model_s / n, 3),
        "wall_ms_per_clip": round(1000 * (clips.seconds + model_s) / n, 3),
    }


def score_named(logits: np.ndarray, truth: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """Top-1 and per-class accuracy with ground truth given as class names."""
    col = {n: i for i, n in enumerate(names)}
    missing = sorted(set(truth) - set(col))
    if missing:
        raise ValueError(f"the model has no class {missing[0]!r}")
    target = np.array([col[t] for t in truth])
    ok = logits.argmax(axis=1) == target
    per_class = {}
    for c in dict.fromkeys(sorted(truth)):
        rows = target == col[c]
        per_class[c] = accuracy(int(ok[rows].sum()), int(rows.sum()))
    return {"overall": accuracy(int(ok.sum()), len(ok)), "per_class": per_class, "pairs": {}}


def _evaluate_source(
    location: Path,
    models: Mapping[str, Path],
    cfg: ShortEvalConfig,
    on_clip: Callable[[], None] | None,
) -> dict[str, Any]:
    from offline.data.sources import DataError, SourceSpec, open_source

    src = open_source(SourceSpec(location, videos_dir=cfg.videos_dir))
    src.require_clean()
    samples = [s for s in src.samples if len(s.labels) == 1][: cfg.limit]
    if not samples:
        raise DataError(f"{location}: no single-label clips to evaluate", code="no_samples")
    files = [s.path for s in samples]
    truth = [src.classes[s.label] for s in samples]
    report: dict[str, Any] = {"data": str(location), "clips": len(files), "machine": machine()}
    decoded: dict[tuple[ClipSpec, int], _Decoded] = {}
    results: dict[str, Any] = {}
    for name, path in models.items():
        package = load_package(path)
        spec, short_side = _geometry(package)
        if (spec, short_side) not in decoded:
            decoded[(spec, short_side)] = decode_clips(
                files, spec, short_side, cfg.workers, on_clip
            )
        clips = decoded[(spec, short_side)]
        logits, model_s = _classify(package, clips, cfg.batch_size)
        head = package.heads[0]
        scores = score_named(logits, truth, package.labels[head.name])
        results[name] = _model_row(path, package, spec, clips, model_s) | scores
    report["models"] = results
    report["class_names"] = sorted(set(truth))
    return report
