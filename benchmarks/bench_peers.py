"""avserve's batcher against LitServe's on the same model and the same pre-decoded clips.

For each model (the shipped package, and ``avslowfast_r50_4x16`` with random weights), two
servers run side by side on loopback, each in its own process of this interpreter:
``benchmarks.peers.avserve_app`` (avserve's runtime + ``DynamicBatcher``) and
``benchmarks.peers.litserve_app`` (the same runtime behind ``LitAPI`` batching), both with max
batch 8 and a 5 ms batch timeout. One closed-loop client (``benchmarks.peers.client``) sends
the same JSON clips at concurrency 1, 16 and 64; rounds alternate which server goes first so
that load from other processes hits both alike, and each configuration keeps its best round.
While one server is measured the other is paused (SIGSTOP to its process group): an idle
LitServe polls its queues (about 7% of a core, API server and inference worker together, on
the r50 app of this harness), and those wakeups stalled avserve's OpenMP team when both ran
side by side, while an idle avserve uses none. Paused, neither costs the other anything.

Goal (issue 19): avserve >= 1.0x LitServe's throughput at every concurrency, p50/p99 no worse.
Needs the benchmark environment (``make bench-peers``: .venv-bench with LitServe).
Writes bench-results/peers_serving.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import machine
from benchmarks.peers.client import run_closed_loop
from benchmarks.peers.payload import load_spec, random_clips

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "peers_serving.json"
CONCURRENCY = (1, 16, 64)
MAX_BATCH, TIMEOUT_S = 8, 0.005
THREADS = {"n": 0}  # torch intra-op threads of both servers (0: torch's default)
# Requests per concurrency: enough for full batches at 64 and a p99 that is not the worst one
# or two requests (10 requests per concurrent client), few where one forward takes seconds.
PLANS: dict[str, dict[str, Any]] = {
    "shipped": {"requests": {1: 96, 16: 640, 64: 1280}, "rounds": 3},
    "avslowfast_r50_4x16": {"requests": {1: 8, 16: 32, 64: 64}, "rounds": 2},
}


def r50_package(directory: Path) -> Path:
    import torch

    import models

    torch.manual_seed(0)
    model = models.build_model("avslowfast_r50_4x16", num_classes=400)
    labels = [f"class_{i:03d}" for i in range(400)]
    return models.save_package(
        directory / "r50", model, name="r50-random", version="0", labels=labels
    )


def shipped_package() -> Path:
    import models

    return Path(models.__file__).resolve().parent / "zoo" / "avsynth"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    module: str, package: Path, log: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", module, "--package", str(package), "--port", str(port)]
    cmd += ["--max-batch", str(MAX_BATCH), "--timeout", str(TIMEOUT_S), *extra]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    if THREADS["n"]:  # both servers alike: OpenMP reads it before torch starts its pool
        env["OMP_NUM_THREADS"] = str(THREADS["n"])
    with log.open("wb") as out:
        # its own process group: LitServe's inference workers are children that outlive a
        # SIGINT to the server (they kept spinning through later benchmarks); _stop ends all
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"{module} did not start:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT the server, then kill whatever is left of its process group (its workers)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


IDLE_S = 5.0  # how long each server's idle CPU is sampled


def _group_stats(pgid: int) -> list[list[str]]:
    """The /proc/<pid>/stat fields after the command name, for each process of the group."""
    out = []
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # state, ppid, pgrp, ...
            out.append(fields)
    return out


def _group_stopped(pgid: int) -> bool:
    return all(f[0] in "Tt" for f in _group_stats(pgid))


def _group_cpu_s(pgid: int) -> float | None:
    """CPU seconds (user + system) of every live process in a process group; None off Linux."""
    if not Path("/proc").is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(int(f[11]) + int(f[12]) for f in _group_stats(pgid))  # utime, stime
    return total / tick


def _idle_cpu_share(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float | None]:
    """Share of one core each server (workers included) uses while nobody sends it anything.

    Why it matters: side by side on few cores, an idle server that polls takes CPU from the one
    being measured, which is why the peer is paused during each measurement.
    """
    before = {name: _group_cpu_s(proc.pid) for name, proc in procs.items()}
    time.sleep(IDLE_S)
    after = {name: _group_cpu_s(proc.pid) for name, proc in procs.items()}
    return {
        name: None if before[name] is None or after[name] is None
        else round((after[name] - before[name]) / IDLE_S, 4)  # type: ignore[operator]
        for name in procs
    }  # fmt: skip


@contextlib.contextmanager
def _paused(procs: list[subprocess.Popen[bytes]]) -> Any:
    """SIGSTOP these servers' process groups (workers included) for the block, then SIGCONT."""
    for proc in procs:
        os.killpg(proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5  # delivery is asynchronous: measure only once all are
    while time.monotonic() < deadline and not all(_group_stopped(p.pid) for p in procs):
        time.sleep(0.01)
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)


def _batches(server: str, url: str, stats_file: Path) -> tuple[int, int, float, int]:
    """(batches, clips, seconds inside the forward, batches on fewer threads) so far."""
    if server == "avserve":
        s = httpx.get(f"{url}/stats", timeout=10).json()
        return int(s["batches"]), int(s["clips"]), float(s["predict_s"]), int(s["spared"])
    if not stats_file.is_file():
        return 0, 0, 0.0, 0
    batches, clips, predict_s = stats_file.read_text().split()[:3]
    return int(batches), int(clips), float(predict_s), 0


def compare(label: str, package: Path, work: Path, quick: bool = False) -> list[dict[str, Any]]:
    plan = PLANS[label]
    if quick:  # a check that the harness works, not a measurement
        plan = {"requests": {c: max(2, n // 8) for c, n in plan["requests"].items()}, "rounds": 1}
    spec = load_spec(package)
    clips = random_clips(spec, 32)
    stats_file = work / f"litserve-{label}.stats"
    servers = {
        "avserve": _start("benchmarks.peers.avserve_app", package, work / f"avserve-{label}.log"),
        "litserve": _start(
            "benchmarks.peers.litserve_app",
            package,
            work / f"litserve-{label}.log",
            "--stats-file",
            str(stats_file),
        ),
    }
    best: dict[tuple[str, int], dict[str, Any]] = {}
    rounds: list[dict[str, Any]] = []
    try:
        for _, url in servers.values():  # first requests pay one-off set-up on both sides
            run_closed_loop(
                url, "/predict", lambda i: {"json": clips[i]}, concurrency=2, requests=4
            )
        idle = _idle_cpu_share({name: proc for name, (proc, _) in servers.items()})
        print(f"  {label} idle CPU share of one core: {idle}", flush=True)
        for rnd in range(plan["rounds"]):
            for c in CONCURRENCY:
                order = list(servers) if (rnd + c) % 2 == 0 else list(reversed(servers))
                for name in order:
                    url = servers[name][1]
                    others = [proc for other, (proc, _) in servers.items() if other != name]
                    b0, c0, s0, f0 = _batches(name, url, stats_file)
                    with _paused(others):
                        res = run_closed_loop(
                            url,
                            "/predict",
                            lambda i: {"json": clips[i % len(clips)]},
                            concurrency=c,
                            requests=plan["requests"][c],
                        )
                    b1, c1, s1, f1 = _batches(name, url, stats_file)
                    row = {
                        "model": label,
                        "server": name,
                        "round": rnd,
                        **res.summary(),
                        "mean_batch": round((c1 - c0) / max(b1 - b0, 1), 2),
                        # Share of the run's wall time the model was computing: what is left
                        # is the serving layer's (or the machine's) idle time.
                        "model_busy": round((s1 - s0) / max(res.wall_s, 1e-9), 3),
                        "batches": b1 - b0,
                        # Full batches run one torch thread short (SpareThreadChoice).
                        "spared_batches": f1 - f0,
                    }
                    rounds.append(row)
                    print(
                        f"  {label} {name:8s} c={c:2d} round {rnd}: "
                        f"{row['throughput_rps']:.2f} req/s p50 {row['p50_ms']:.0f} ms "
                        f"p99 {row['p99_ms']:.0f} ms batch {row['mean_batch']} "
                        f"busy {row['model_busy']:.0%} "
                        f"spared {row['spared_batches']}/{row['batches']}",
                        flush=True,
                    )
                    if (name, c) not in best or row["throughput_rps"] > best[(name, c)][
                        "throughput_rps"
                    ]:
                        best[(name, c)] = row
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    return [best[(s, c)] for c in CONCURRENCY for s in servers] + [
        {"all_rounds": rounds, "model": label, "idle_cpu_share": idle}
    ]


def main(argv: list[str] | None = None) -> None:
    import litserve
    import torch

    from service.settings import Settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(PLANS), choices=list(PLANS))
    p.add_argument("--quick", action="store_true", help="few requests, one round (smoke test)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="intra-op threads of both servers (default: torch's, one per core)",
    )
    p.add_argument("--out", type=Path, default=OUT, help="result file")
    args = p.parse_args(argv)
    THREADS["n"] = args.torch_threads
    info = machine()
    print(f"peer serving benchmark on {info}", flush=True)
    rows: list[dict[str, Any]] = []
    rounds: dict[str, Any] = {}
    idle: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label in args.models:
            package = shipped_package() if label == "shipped" else r50_package(work)
            out = compare(label, package, work, args.quick)
            last = out.pop()
            rounds[label], idle[label] = last["all_rounds"], last["idle_cpu_share"]
            rows += out
    ratios = []
    for label in args.models:
        for c in CONCURRENCY:
            a = next(
                r
                for r in rows
                if (r["model"], r["server"], r["concurrency"]) == (label, "avserve", c)
            )
            b = next(
                r
                for r in rows
                if (r["model"], r["server"], r["concurrency"]) == (label, "litserve", c)
            )
            ratios.append(
                {
                    "model": label,
                    "concurrency": c,
                    "throughput_ratio": round(a["throughput_rps"] / b["throughput_rps"], 3),
                    "p50_ratio": round(a["p50_ms"] / b["p50_ms"], 3),
                    "p99_ratio": round(a["p99_ms"] / b["p99_ms"], 3),
                }
            )
    result = {
        "benchmark": "peers_serving",
        "what": "pre-decoded clips as JSON over loopback HTTP, closed loop; avserve runtime + "
        "DynamicBatcher vs the same runtime behind LitServe; max batch 8, 5 ms; best round; "
        "each server started as its users start it (avserve: malloc tuning of `avserve serve`, "
        "LitServe: glibc's defaults); the other server paused (SIGSTOP) while one is measured",
        "avserve_malloc_trim_threshold_mb": Settings().malloc_trim_threshold_mb,
        # The servers' torch threads (this client process's own do not matter).
        "machine": info
        | {
            "loadavg_at_end": os.getloadavg(),
            "litserve": litserve.__version__,
            "torch_threads": args.torch_threads or torch.get_num_threads(),
        },
        "quick": args.quick,
        "max_batch_size": MAX_BATCH,
        "batch_timeout_s": TIMEOUT_S,
        "plans": {k: {"requests": v["requests"], "rounds": v["rounds"]} for k, v in PLANS.items()},
        "rows": rows,
        "ratios": ratios,
        "goal_avserve_ge_litserve": all(r["throughput_ratio"] >= 1.0 for r in ratios),
        "goal_latency_no_worse": all(
            r["p50_ratio"] <= 1.0 and r["p99_ratio"] <= 1.0 for r in ratios
        ),
        "rounds": rounds,
        # Per model: share of one core each server used while idle (IDLE_S seconds, workers in).
        "idle_cpu_share": idle,
    }
    for r in ratios:
        print(
            f"{r['model']} c={r['concurrency']}: avserve/LitServe throughput "
            f"{r['throughput_ratio']:.2f}x, p50 {r['p50_ratio']:.2f}x, p99 {r['p99_ratio']:.2f}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
