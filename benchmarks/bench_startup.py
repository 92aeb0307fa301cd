"""Start-up: ``avserve classify`` on one short file, and the gateway from start to ready.

Measured from the shell's point of view, each in a fresh process with the bundled model:

- ``python -c "import torch"`` and ``avserve --help``: the floor (interpreter, torch import,
  the CLI's own imports);
- ``avserve classify <file>``: wall time from spawn to exit (the answer printed), on a short
  real video from ../shared/media;
- ``avserve serve``: wall time from spawn until ``/v2/health/ready`` answers 200 (models loaded,
  decode workers up, warm-up request done), polled every 20 ms.

The rounds share one export/compute-cost cache folder, as a restarted service does; with
``--cold`` each of classify and serve is first timed once more on an empty one (what a first
start after installation pays; the first round also fills the folder when ``--cold`` is off). Each figure
is the median over the rounds; CPU seconds (user + system, children included) are reported
next to wall seconds because the machine is shared with other jobs (see load averages).

Goals (issue 19): classify <= 3 s; gateway ready <= 5 s.
Run: ``python -m benchmarks.bench_startup [--rounds N]``; writes bench-results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "startup.json"
VIDEO = "mdn-ie__flower.mp4"
ROUNDS = 4
READY_TIMEOUT_S = 900
GOALS = {"classify_s": 3.0, "serve_ready_s": 5.0}


def _shared_media() -> Path:
    env = os.environ.get("AVSERVE_SHARED_DIR")
    return (Path(env) if env else REPO.parent / "shared") / "media"


def _avserve() -> list[str]:
    script = Path(sys.executable).with_name("avserve")
    if script.is_file():  # the console script a user runs
        return [str(script)]
    return [sys.executable, "-c", "from service.cli import main; main()"]


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    env |= {"AVSERVE_EXPORT_CACHE_DIR": str(cache), "AVSERVE_LOG_LEVEL": "warning"}
    return env


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(run: Callable[[], float | None]) -> dict[str, float]:
    """Wall seconds of ``run`` (or the seconds it reports itself: serve stops the clock at
    ready, not after its shutdown) and the CPU seconds of the processes it waited for."""
    cpu0, t0 = _cpu_children(), time.perf_counter()
    reported = run()
    wall = time.perf_counter() - t0 if reported is None else reported
    return {"wall_s": wall, "cpu_s": _cpu_children() - cpu0}


def _command(cmd: list[str], env: dict[str, str]) -> Callable[[], float | None]:
    def run() -> float | None:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
        return None

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str]) -> Callable[[], float | None]:
    def run() -> float | None:
        import httpx

        port = _free_port()
        t0 = time.perf_counter()
        cmd = [*_avserve(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"avserve serve exited {proc.returncode}: {err[-2000:]}")
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        return time.perf_counter() - t0  # the shutdown below is not counted
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
            raise RuntimeError(f"avserve serve was not ready in {READY_TIMEOUT_S} s")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    return run


def main() -> None:
    from benchmarks.common import machine

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--cold", action="store_true", help="also time a first start")
    args = parser.parse_args()
    info = machine()
    video = _shared_media() / VIDEO
    cache = Path(tempfile.mkdtemp(prefix="avserve-startup-"))
    env = _env(cache)
    cases = {
        "import_torch_s": _command([sys.executable, "-c", "import torch"], env),
        "help_s": _command([*_avserve(), "--help"], env),
        "classify_s": _command([*_avserve(), "classify", str(video), "--format", "json"], env),
        "serve_ready_s": _serve(env),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    cold: dict[str, dict[str, float]] = {}
    try:
        for name in ("classify_s", "serve_ready_s") if args.cold else ():
            shutil.rmtree(cache, ignore_errors=True)  # empty cache: a first start
            cache.mkdir()
            cold[name] = _timed(cases[name])
            print(f"cold {name}: {cold[name]['wall_s']:.2f} s", flush=True)
        for _ in range(args.rounds):  # rounds interleave cases: load hits them alike
            for name, run in cases.items():
                runs[name].append(_timed(run))
                print(f"{name}: {runs[name][-1]['wall_s']:.2f} s", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rows: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        walls = [r["wall_s"] for r in rs]
        rows[name] = {
            "median_wall_s": round(statistics.median(walls), 3),
            "min_wall_s": round(min(walls), 3),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 3),
            "walls_s": [round(w, 3) for w in walls],
        }
        if name in cold:
            rows[name]["cold_wall_s"] = round(cold[name]["wall_s"], 3)
            rows[name]["cold_cpu_s"] = round(cold[name]["cpu_s"], 3)
        if name in GOALS:
            rows[name]["goal_s"] = GOALS[name]
            rows[name]["goal_met"] = rows[name]["median_wall_s"] <= GOALS[name]
    print(f"\n{'case':16s} {'median s':>9s} {'min s':>7s} {'cpu s':>7s} {'cold s':>7s}")
    for name, r in rows.items():
        cold_s = f"{r['cold_wall_s']:.2f}" if "cold_wall_s" in r else "-"
        print(
            f"{name:16s} {r['median_wall_s']:9.2f} {r['min_wall_s']:7.2f} "
            f"{r['median_cpu_s']:7.2f} {cold_s:>7s}"
        )
    info["loadavg_at_end"] = os.getloadavg()
    result = {
        "benchmark": "startup",
        "what": f"fresh processes, bundled model; classify: `avserve classify {VIDEO}`; "
        "serve: spawn to the first /v2/health/ready 200 (its shutdown is not timed; CPU "
        "seconds include it); median of rounds (cold = empty cache folder); see the load "
        "averages for what else ran",
        "machine": info,
        "rounds": args.rounds,
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
