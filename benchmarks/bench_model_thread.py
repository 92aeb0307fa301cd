"""Batch-1 forward of the shipped model: one torch thread per process vs torch on several.

Issue 19: a batch-1 forward costs 12-15 ms while only one thread of the process has ever run
torch ops and ~27-30 ms once a second thread has (each calling thread gets its own OpenMP
team, whose spinning workers compete for the cores). Each mode runs in a fresh process:

- ``reference``: everything (load, warm-up, forwards) on the main thread, nothing else;
- ``legacy``: the old service layout: model loaded on a ``to_thread`` worker, the glance net
  run on another worker thread, heavy forwards on a dedicated device thread;
- ``served``: the service as it is: registry loaded and warmed up through
  ``service.executor``, the glance net called from ``to_thread`` workers (the pipeline's
  planning), heavy forwards through the model thread, and through the batcher (batch 1,
  concurrency 1: what a lone request waits for, ``max_queue_delay_ms`` included).

Per runtime (eager, TorchScript, ONNX Runtime) and mode: the median forward of N calls, the
best of ROUNDS fresh processes (rounds interleave modes, so a shared machine's load hits them
alike). Goal: served forward <= reference forward (within noise).

Run: ``python -m benchmarks.bench_model_thread``; writes bench-results/model_thread.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "model_thread.json"
MODES = ("reference", "legacy", "served")
RUNTIMES = ("eager", "torchscript", "onnx")
CALLS = 20
ROUNDS = 3
GLANCE_CALLS = 3


def _median_ms(fn: Callable[[], Any], n: int = CALLS) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _glance_input(package: Any) -> Any:
    import numpy as np

    from service.media.types import GlanceSnippets

    glance = package.glance_model()
    if glance is None:
        return None
    cfg = glance.cfg
    n, s = cfg.num_snippets, cfg.frame_size
    samples = round(cfg.audio_seconds * cfg.audio_features.sample_rate)
    rng = np.random.default_rng(0)
    return GlanceSnippets(
        frames=rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8),
        audio=rng.uniform(-0.5, 0.5, (n, samples)).astype(np.float32),
        times_s=np.linspace(0.0, 10.0, n),
        audio_present=True,
    )


def child(mode: str, kind: str, package_dir: Path, cache: Path) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    from models.package import load_package
    from service.glance import GlanceRunner
    from service.runtimes import build_runtime

    def build() -> tuple[Any, Any, Any]:
        package = load_package(package_dir)
        rt = build_runtime(package, kind, "cpu", cache_dir=cache)  # type: ignore[arg-type]
        net = package.glance_model()
        runner = None if net is None else GlanceRunner(net)
        return rt, runner, _glance_input(package)

    out: dict[str, Any] = {"mode": mode, "runtime": kind}
    if mode == "reference":
        rt, _, _ = build()
        x = rt.spec.example(1)
        rt.warmup(1)
        out["forward_ms"] = _median_ms(lambda: rt.run(x))
    elif mode == "legacy":
        with ThreadPoolExecutor(1) as loader:
            rt, runner, snippets = loader.submit(build).result()
        if runner is not None:  # the glance ran on asyncio's default workers
            with ThreadPoolExecutor(1) as worker:
                for _ in range(GLANCE_CALLS):
                    worker.submit(runner._score, snippets).result()
        x = rt.spec.example(1)
        with ThreadPoolExecutor(1, thread_name_prefix="device") as device:
            device.submit(rt.warmup, 1).result()
            out["forward_ms"] = device.submit(_median_ms, lambda: rt.run(x)).result()
    else:
        out |= asyncio.run(_served(build))
    return out


async def _served(build: Callable[[], tuple[Any, Any, Any]]) -> dict[str, Any]:
    from service.batcher import BatcherConfig, DynamicBatcher
    from service.executor import model_thread

    mt = model_thread()
    rt, runner, snippets = await mt.run(build)
    if runner is not None:  # the pipeline plans on a worker thread; the net hops to mt
        for _ in range(GLANCE_CALLS):
            await asyncio.to_thread(runner.score, snippets)
    x = rt.spec.example(1)
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=8)) as batcher:
        await batcher.warmup(1)
        forward_ms = await mt.run(_median_ms, lambda: rt.run(x))
        times = []
        for i in range(CALLS + 5):
            t0 = time.perf_counter()
            await batcher.infer(x)
            if i >= 5:
                times.append(time.perf_counter() - t0)
    return {
        "forward_ms": forward_ms,
        "batcher_batch1_ms": statistics.median(times) * 1000,
        "batcher_delay_ms": BatcherConfig().max_queue_delay_ms,
        "threads_alive": threading.active_count(),
    }


def _run_child(mode: str, kind: str, package_dir: Path, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_model_thread", "--child", mode, kind]
    cmd += [str(package_dir), str(cache)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    from benchmarks.common import machine

    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=4, metavar=("MODE", "RUNTIME", "PACKAGE", "CACHE"))
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if args.child:
        mode, kind, pkg, cache = args.child
        print(json.dumps(child(mode, kind, Path(pkg), Path(cache))))
        return
    import models

    package_dir = Path(models.__file__).resolve().parent / "zoo" / "avsynth"
    info = machine()
    print(f"model thread benchmark on {info['cpu']} ({info['cores']} cores, shared machine)")
    runtimes = args.runtimes.split(",")
    best: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for kind in runtimes:
                for mode in MODES:
                    r = _run_child(mode, kind, package_dir, Path(tmp))
                    key = (kind, mode)
                    prev = best.get(key)
                    best[key] = r if prev is None or r["forward_ms"] < prev["forward_ms"] else prev
                    best[key]["rounds_ms"] = [*(prev or {}).get("rounds_ms", []), r["forward_ms"]]
    rows = [best[(k, m)] for k in runtimes for m in MODES]
    print(f"\n{'runtime':12s} {'mode':10s} {'forward ms':>11s} {'batcher ms':>11s}  rounds")
    for r in rows:
        batcher = f"{r['batcher_batch1_ms']:.1f}" if "batcher_batch1_ms" in r else "-"
        rounds = " ".join(f"{v:.1f}" for v in r["rounds_ms"])
        print(
            f"{r['runtime']:12s} {r['mode']:10s} {r['forward_ms']:11.1f} {batcher:>11s}  {rounds}"
        )
    summary = {}
    for kind in runtimes:
        ref, served = best[(kind, "reference")], best[(kind, "served")]
        summary[kind] = {
            "reference_ms": ref["forward_ms"],
            "legacy_ms": best[(kind, "legacy")]["forward_ms"],
            "served_ms": served["forward_ms"],
            "served_vs_reference": served["forward_ms"] / ref["forward_ms"],
        }
    info["loadavg_at_end"] = os.getloadavg()
    result = {
        "benchmark": "model_thread",
        "what": "batch-1 forward of the shipped model (models/zoo/avsynth), median of "
        f"{CALLS} calls, best of {args.rounds} fresh processes per mode; machine shared with "
        "other jobs (see load averages)",
        "machine": info,
        "model": "avsynth",
        "calls": CALLS,
        "rounds": args.rounds,
        "rows": rows,
        "summary": summary,
        "goal": "served forward <= reference forward (one torch thread per process)",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
