"""Benchmark of the window policies end to end: wall-clock and GMACs per video.

On the generated 60 s 1280x720 30 fps H.264 video of ``bench_media`` (keyframe every 2 s), with
the full-size ``avslowfast_r50_4x16`` architecture (random weights: timing only) behind the
eager runtime and the default-size glance network (random weights), it classifies the video
once per policy through the real pipeline (decode pool of 2 workers, the dynamic batcher with
max batch 8) and reports wall-clock, per-stage times and GMACs (glance + heavy) against dense.

Goal (issue 4): ``glance`` and ``heuristic`` with K <= 4 at least 10x faster than ``dense``.

Run: ``python -m benchmarks.bench_policies`` (or ``make bench``). Writes bench-results/policies.json.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_media import CACHE, machine, make_video

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "policies.json"
RUNS: tuple[tuple[str, int | None], ...] = (
    ("glance", 1),
    ("glance", 2),
    ("glance", 4),
    ("heuristic", 1),
    ("heuristic", 2),
    ("heuristic", 4),
    ("uniform", 4),
    ("dense", None),
)


def build_package(directory: Path) -> Path:
    import torch

    import models
    from models.glance import GlanceConfig, GlanceNet

    torch.manual_seed(0)
    model = models.build_model("avslowfast_r50_4x16", num_classes=400)
    glance = GlanceNet(GlanceConfig(heads=model.config.heads))
    labels = [f"class_{i:03d}" for i in range(400)]
    return models.save_package(
        directory / "r50", model, name="r50-random", version="0", labels=labels, glance=glance
    )


async def run(package_dir: Path, video: Path) -> list[dict[str, Any]]:
    from models import load_package
    from service.batcher import BatcherConfig, DynamicBatcher
    from service.media import DecodePool, MediaPolicy
    from service.pipeline import Pipeline
    from service.pipeline_config import PipelineConfig
    from service.runtimes import build_runtime
    from service.schemas import ClassifyOptions

    package = load_package(package_dir)
    runtime = build_runtime(package, "eager", "cpu")
    rows = []
    async with (
        DynamicBatcher(runtime, BatcherConfig(max_batch_size=8)) as batcher,
        DecodePool(2, MediaPolicy()) as pool,
    ):
        await batcher.warmup(1)
        pipeline = Pipeline(package, pool, batcher.infer, PipelineConfig(dense_chunk=6))
        pipeline.heavy_gmacs(224), pipeline.heavy_gmacs(256)  # count once, outside the timings
        for policy, k in RUNS:
            pipeline.glance_gmacs(k or 0)
            t0 = time.perf_counter()
            r = await pipeline.classify(video, ClassifyOptions(policy=policy, k=k))  # type: ignore[arg-type]
            wall = time.perf_counter() - t0
            rows.append(
                {
                    "policy": policy,
                    "k": r.k,
                    "wall_s": round(wall, 3),
                    "timings_ms": r.timings_ms,
                    "gmacs": r.compute.gmacs,
                    "glance_gmacs": r.compute.glance_gmacs,
                    "heavy_gmacs": r.compute.heavy_gmacs,
                    "fraction_of_dense_gmacs": r.compute.fraction_of_dense,
                }
            )
            print(
                f"  {policy:9s} k={r.k:2d}  {wall:7.2f} s  {r.compute.gmacs:8.1f} GMACs", flush=True
            )
    dense_wall = next(r["wall_s"] for r in rows if r["policy"] == "dense")
    for r in rows:
        r["speedup_vs_dense"] = round(dense_wall / r["wall_s"], 2)
    return rows


def main() -> None:
    import torch

    video = make_video(CACHE / "bench_720p_60s_gop60.mp4", gop=60)
    print(f"policies benchmark on {video.name} (torch threads: {torch.get_num_threads()})")
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(run(build_package(Path(tmp)), video))
    print(
        f"\n{'policy':10s} {'K':>3s} {'wall s':>8s} {'x dense':>8s} {'GMACs':>8s} {'% dense':>8s}"
    )
    for r in rows:
        print(
            f"{r['policy']:10s} {r['k']:3d} {r['wall_s']:8.2f} {r['speedup_vs_dense']:8.1f} "
            f"{r['gmacs']:8.1f} {100 * r['fraction_of_dense_gmacs']:7.1f}%"
        )
    goal = all(r["speedup_vs_dense"] >= 10 for r in rows if r["policy"] in ("glance", "heuristic"))
    result = {
        "benchmark": "policies",
        "what": "one 60 s 720p H.264 video through the real pipeline per policy; "
        "avslowfast_r50_4x16 (random weights), eager runtime, decode pool of 2",
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "goal_glance_heuristic_10x_faster_than_dense": goal,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
