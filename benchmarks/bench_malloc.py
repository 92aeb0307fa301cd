"""Page faults and time per forward, with glibc's malloc defaults and with ``service.malloc_tuning``.

Each (model, batch, mode) runs in a fresh process, as the gateway runs a model: package
loaded and forwards run on the model thread (``service.executor``), inputs made on another
thread. ``defaults``: glibc's adaptive thresholds; ``tuned``: ``retain_freed_memory`` with the
service's default trim threshold, called before torch is imported (as ``avserve serve`` does).
Per process: WARMUP forwards, then CALLS forwards; the minor page faults of the whole
process during each forward (``getrusage``) and its wall time. Rounds interleave the modes,
so a shared machine's load hits them alike; the summary keeps each mode's best round (lowest
median time) and its median faults.

Models: the shipped AVSynth package and ``avslowfast_r50_4x16`` with random weights
(``bench_peers.r50_package``), whose activations exceed what glibc's defaults keep.

Run: ``python -m benchmarks.bench_malloc [--quick]``; writes bench-results/malloc_faults.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "malloc_faults.json"
MODES = ("defaults", "tuned")
CASES = (("shipped", 1), ("shipped", 8), ("avslowfast_r50_4x16", 1), ("avslowfast_r50_4x16", 2))
WARMUP = 2
CALLS = 8
ROUNDS = 3


def _child(package: str, batch: int, mode: str, calls: int) -> dict[str, Any]:
    """One process's measurement (runs in the child; prints one JSON line)."""
    import resource
    import threading
    import time

    if mode == "tuned":
        from service.malloc_tuning import retain_freed_memory
        from service.settings import Settings

        assert retain_freed_memory(Settings().malloc_trim_threshold_mb), "glibc expected"
    from models import load_package
    from service.executor import model_thread
    from service.runtimes import build_runtime

    runtime = model_thread().call(lambda: build_runtime(load_package(package), "eager", "cpu"))

    def inputs() -> Any:
        box: list[Any] = []
        t = threading.Thread(target=lambda: box.append(runtime.spec.example(batch)))
        t.start()
        t.join()
        return box[0]

    def one() -> tuple[int, float]:
        x = inputs()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        model_thread().call(runtime.run, x)
        dt = time.perf_counter() - t0
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0, dt

    for _ in range(WARMUP):
        one()
    runs = [one() for _ in range(calls)]
    return {
        "faults_median": statistics.median(f for f, _ in runs),
        "forward_ms_median": round(statistics.median(t for _, t in runs) * 1000, 1),
        "faults": [f for f, _ in runs],
        "forward_ms": [round(t * 1000, 1) for _, t in runs],
    }


def _measure(package: Path, batch: int, mode: str, calls: int) -> dict[str, Any]:
    code = (
        "import json, sys; from benchmarks.bench_malloc import _child; "
        f"print(json.dumps(_child({str(package)!r}, {batch}, {mode!r}, {calls})))"
    )
    env = os.environ | {"PYTHONPATH": str(REPO)}
    env.pop("AVSERVE_MALLOC_TRIM_THRESHOLD_MB", None)  # the service's default, as shipped
    for var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        env.pop(var, None)  # "defaults" must mean glibc's
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"{package} b{batch} {mode} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round, 3 calls (a smoke run)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    from benchmarks.bench_peers import r50_package, shipped_package
    from benchmarks.common import machine
    from service.settings import Settings

    rounds, calls = (1, 3) if args.quick else (ROUNDS, CALLS)
    info = machine()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        packages = {"shipped": shipped_package(), "avslowfast_r50_4x16": r50_package(Path(work))}
        for rnd in range(rounds):
            for model, batch in CASES:
                for mode in MODES:
                    r = _measure(packages[model], batch, mode, calls)
                    rows.append({"model": model, "batch": batch, "mode": mode, "round": rnd, **r})
                    print(
                        f"round {rnd} {model} b{batch} {mode}: {r['forward_ms_median']} ms, "
                        f"{r['faults_median']:.0f} faults",
                        flush=True,
                    )
    summary = []
    for model, batch in CASES:
        best = {}
        for mode in MODES:
            mine = [r for r in rows if (r["model"], r["batch"], r["mode"]) == (model, batch, mode)]
            best[mode] = min(mine, key=lambda r: r["forward_ms_median"])
        d, t = best["defaults"], best["tuned"]
        summary.append(
            {
                "model": model,
                "batch": batch,
                "defaults_ms": d["forward_ms_median"],
                "tuned_ms": t["forward_ms_median"],
                "tuned_vs_defaults": round(t["forward_ms_median"] / d["forward_ms_median"], 3),
                "defaults_faults": d["faults_median"],
                "tuned_faults": t["faults_median"],
            }
        )
    info["loadavg_at_end"] = list(os.getloadavg())
    result = {
        "benchmark": "malloc_faults",
        "what": (
            "eager forward on the model thread, inputs made on another thread; minor page faults "
            "of the process and wall time per forward, median of "
            f"{calls} after {WARMUP} warm-up; glibc defaults vs service.malloc_tuning "
            f"(trim threshold {Settings().malloc_trim_threshold_mb} MB, mmap threshold 32 MB, top pad "
            "64 MB); "
            f"best of {rounds} fresh processes per mode"
        ),
        "machine": info,
        "quick": args.quick,
        "summary": summary,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
