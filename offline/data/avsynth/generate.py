"""Generating an AVSynth subset on disk: seeds, worker processes, manifest.

Seeds. Clip ``i`` of subset ``s`` generated with base seed ``b`` uses the integer seed
``SUBSET_BASE[s] + b * SEED_STRIDE + i`` (0 <= i < SEED_STRIDE, 0 <= b < SEED_STRIDE). The three
subsets therefore live in disjoint seed ranges of 2**40 seeds each, so train, val and test can
never share a clip whatever base seeds are used, and the class is ``seed % NUM_CLASSES``
(balanced over consecutive clips). Short and long splits draw from different random streams
(the split is part of every stream key), so the same integer seed gives unrelated clips.

Layout written to ``out``::

    labels.json       class names and definitions (classes.labels_json)
    dataset.json      how the set was generated (split, subset, count, base seed, version)
    manifest.jsonl    one record per file: file, index, subset + clip_meta (label, class_name,
                      event window and box, resolution, fps, sample rate, channels, duration)
    manifest.csv      the same records as CSV (event_box as "x y w h")
    <split>-<subset>-<index>.mp4
    background-<subset>-<index>.mp4   with ``background=N``: N clips showing no class
                                      (``background.py``), label ``background`` (index 10)

Background clip ``j`` uses the integer seed ``clip_seed(subset, base, j)`` too, but every draw
comes from the background module's own streams, so it shares nothing with class clip ``j``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from offline.data.avsynth.background import (
    BACKGROUND,
    background_meta,
    background_spec,
    write_background,
)
from offline.data.avsynth.classes import NUM_CLASSES, labels_json
from offline.data.avsynth.clip import clip_meta, write_clip
from offline.data.avsynth.scene import SPLITS, Split, sample_spec
from service.errors import AvserveError

Subset = Literal["train", "val", "test"]
SUBSET_BASE: dict[str, int] = {"train": 0, "val": 1 << 40, "test": 2 << 40}
SEED_STRIDE = 1_000_000
BACKGROUND_LABEL = NUM_CLASSES  # the outcome after the classes: index 10
GENERATOR_VERSION = "avsynth-2"
MANIFEST_FIELDS = (
    "file", "index", "subset", "seed", "split", "label", "class_name", "width", "height", "fps",
    "fps_rational", "num_frames", "sample_rate", "channels", "duration_s", "event_start_s",
    "event_end_s", "event_box", "background_kind",
)  # fmt: skip


@dataclass(frozen=True)
class GenerateConfig:
    out: Path
    split: Split = "short"
    subset: Subset = "train"
    count: int = 100
    seed: int = 0
    workers: int = 1
    overwrite: bool = False
    background: int = 0  # extra clips that show none of the classes (short split only)
    windows: int = 0  # extra class clips cut like long-video windows (split "window")

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise AvserveError(f"unknown split {self.split!r}", code="invalid_request")
        if self.subset not in SUBSET_BASE:
            raise AvserveError(f"unknown subset {self.subset!r}", code="invalid_request")
        if not 0 < self.count <= SEED_STRIDE:
            raise AvserveError(f"count must be in 1..{SEED_STRIDE}", code="invalid_request")
        if not 0 <= self.seed < SEED_STRIDE:
            raise AvserveError(f"seed must be in 0..{SEED_STRIDE - 1}", code="invalid_request")
        if not 0 <= self.background <= SEED_STRIDE:
            raise AvserveError(f"background must be in 0..{SEED_STRIDE}", code="invalid_request")
        if (self.background or self.windows) and self.split != "short":
            raise AvserveError(
                "background and window clips come with the short split", code="invalid_request"
            )
        if not 0 <= self.windows <= SEED_STRIDE:
            raise AvserveError(f"windows must be in 0..{SEED_STRIDE}", code="invalid_request")
        if self.workers < 1:
            raise AvserveError("workers must be >= 1", code="invalid_request")


def clip_seed(subset: str, base_seed: int, index: int) -> int:
    """The integer seed of clip ``index`` (see the module docstring)."""
    if not (0 <= index < SEED_STRIDE and 0 <= base_seed < SEED_STRIDE):
        raise ValueError("index and base seed must be in [0, SEED_STRIDE)")
    return SUBSET_BASE[subset] + base_seed * SEED_STRIDE + index


def file_name(split: str, subset: str, index: int) -> str:
    return f"{split}-{subset}-{index:06d}.mp4"


def _one(job: tuple[str, str, str, int, int, bool]) -> dict[str, Any]:
    """Worker: write one clip (atomically, via a temporary name) and return its record."""
    out, split, subset, base_seed, index, overwrite = job
    seed = clip_seed(subset, base_seed, index)
    path = Path(out) / file_name(split, subset, index)
    if split == BACKGROUND:
        spec, kind = background_spec(seed)
        meta = background_meta(spec, kind, BACKGROUND_LABEL)
    else:
        meta = clip_meta(sample_spec(seed, split))  # type: ignore[arg-type]
    if overwrite or not path.is_file() or path.stat().st_size == 0:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if split == BACKGROUND:
            write_background(tmp, seed, BACKGROUND_LABEL)
        else:
            write_clip(tmp, sample_spec(seed, split))  # type: ignore[arg-type]
        os.replace(tmp, path)
    return {"file": path.name, "index": index, "subset": subset, **meta}


def iter_generate(cfg: GenerateConfig) -> Iterator[dict[str, Any]]:
    """Write the clips, yielding each manifest record as its file is done (in index order)."""
    cfg.validate()
    cfg.out.mkdir(parents=True, exist_ok=True)
    jobs = (
        [
            (str(cfg.out), cfg.split, cfg.subset, cfg.seed, i, cfg.overwrite)
            for i in range(cfg.count)
        ]
        + [
            (str(cfg.out), BACKGROUND, cfg.subset, cfg.seed, i, cfg.overwrite)
            for i in range(cfg.background)
        ]
        + [
            (str(cfg.out), "window", cfg.subset, cfg.seed, i, cfg.overwrite)
            for i in range(cfg.windows)
        ]
    )
    if cfg.workers == 1:
        yield from map(_one, jobs)
        return
    # spawn: the parent may run threads (progress bar); forking those is unsafe.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) as pool:
        yield from pool.map(_one, jobs, chunksize=4)


def write_manifest(out: Path, records: list[dict[str, Any]]) -> None:
    with open(out / "manifest.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for rec in records:
            row = dict(rec)
            row["event_box"] = " ".join(str(v) for v in rec["event_box"])
            writer.writerow(row)


def generate(
    cfg: GenerateConfig, on_progress: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Generate a subset into ``cfg.out`` with manifest, labels.json and dataset.json."""
    records = []
    for rec in iter_generate(cfg):
        records.append(rec)
        if on_progress is not None:
            on_progress(rec)
    (cfg.out / "labels.json").write_text(labels_json(background=cfg.background > 0))
    info = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    info.pop("overwrite")
    info.update(version=GENERATOR_VERSION, seed_base=SUBSET_BASE[cfg.subset])
    (cfg.out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    write_manifest(cfg.out, records)
    return records


def read_manifest(data_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a generated set (raises AvserveError when the directory has none)."""
    path = Path(data_dir) / "manifest.jsonl"
    if not path.is_file():
        raise AvserveError(f"no manifest.jsonl in {data_dir}", code="not_found")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
