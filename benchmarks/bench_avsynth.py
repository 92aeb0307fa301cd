"""Benchmark of the AVSynth data path and the training step.

Measures: short-clip generation (render only, render + encode; 1 and 2 worker processes),
long-video generation, decoding into the clip cache, batch building, and one training step of
``avslowfast_tiny`` (clips/s) at two crop sizes. Run: ``python -m benchmarks.bench_avsynth``
(or ``make bench``). Writes bench-results/avsynth.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine
from offline.data.avsynth import generate_clip, sample_spec, write_clip
from offline.data.avsynth.generate import GenerateConfig, generate
from offline.data.cache import CacheConfig, build_cache
from offline.data.dataset import ClipBatches, SamplingConfig

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "avsynth.json"


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def train_step_clips_per_s(crop: int, batch: int = 16, threads: int = 1) -> float:
    from models import PreprocessConfig, build_model
    from models.preprocess import ClipPreprocessor
    from offline.train import TrainConfig, Trainer

    torch.set_num_threads(threads)
    pre = PreprocessConfig(crop_size=crop, short_side=crop, test_crop_size=crop)
    with tempfile.TemporaryDirectory() as run:
        model = build_model("avslowfast_tiny", num_classes=10)
        trainer = Trainer(model, ClipPreprocessor(pre), TrainConfig(), run, progress=False)
        b = {
            "frames": torch.randint(0, 255, (batch, 32, crop, crop, 3), dtype=torch.uint8),
            "audio": torch.randn(batch, pre.audio_samples) * 0.1,
            "label": torch.randint(0, 10, (batch,)),
        }
        trainer.train_step(b, 0.0)  # warm-up
        steps = 3
        dt = _timed(lambda: [trainer.train_step(b, 0.0) for _ in range(steps)])
    return steps * batch / dt


def main() -> None:
    console = Console()
    n_short = int(os.environ.get("AVSYNTH_BENCH_CLIPS", "40"))
    rows: list[tuple[str, float, str]] = []
    render = _timed(lambda: [generate_clip(s) for s in range(n_short)])
    rows.append(("short clips rendered (no encode), 1 process", n_short / render, "clips/s"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for workers in (1, 2):
            out = root / f"w{workers}"
            cfg = GenerateConfig(out=out, count=n_short, seed=workers, workers=workers)
            dt = _timed(lambda cfg=cfg: generate(cfg))
            rows.append(
                (f"short clips written (H.264+AAC), {workers} worker(s)", n_short / dt, "clips/s")
            )
        specs = [sample_spec(s, "long") for s in range(3)]
        dt = _timed(lambda: [write_clip(root / f"long{s.seed}.mp4", s) for s in specs])
        video_s = sum(s.duration_s for s in specs)
        rows.append(("long videos written, 1 process", dt / len(specs), "s/video"))
        rows.append(("long videos written, 1 process", video_s / dt, "video-s/s"))
        cache_cfg = CacheConfig(side=128, grid_fps=15.0)
        dt = _timed(lambda: build_cache(root / "w1", root / "cache", cache_cfg))
        rows.append(("decode into the clip cache (128 px, 15 fps)", n_short / dt, "clips/s"))
        cache = build_cache(root / "w1", root / "cache", cache_cfg)
        batches = ClipBatches(cache, SamplingConfig(crop_size=112), batch_size=8, prefetch=0)
        dt = _timed(lambda: list(batches))
        rows.append(("augmented batches (32x112x112)", len(batches) * 8 / dt, "clips/s"))
    for crop in (64, 112):
        rows.append(
            (f"train step avslowfast_tiny, crop {crop}, B=16, 1 thread",
             train_step_clips_per_s(crop), "clips/s")
        )  # fmt: skip
    table = Table(title="AVSynth data path and training step")
    for col in ("what", "value", "unit"):
        table.add_column(col)
    for what, value, unit in rows:
        table.add_row(what, f"{value:.2f}", unit)
    console.print(table)
    info = machine()
    console.print(info)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": info, "results": [{"what": w, "value": v, "unit": u} for w, v, u in rows]}
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
