"""``make bench``: every benchmark in turn, each in its own process; results in bench-results/.

Pass names to run a subset: ``python -m benchmarks.run_all media policies``.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = (
    "models",  # params / GMACs / forward latency per named config
    "media",  # full decode vs glance sampling vs glance + 3 windows
    "glance",  # glance GMACs/params/latency, log-mel and clip preprocessing, librosa parity
    "policies",  # wall-clock and GMACs per policy on a 60 s 720p video
    "serving",  # batcher throughput/latency, batching on/off, runtimes
    "serving_e2e",  # real HTTP server end to end
    "queue",  # job queue overhead, memory vs Redis
    "admission",  # what the slow-client defence costs a normal request
    "avsynth",  # dataset generation speed
    "first_request",  # first request after start-up vs later ones, warm-up on/off
    "model_thread",  # batch-1 forward: one torch thread per process vs several
    "malloc",  # page faults per forward: glibc malloc defaults vs service.malloc_tuning
    "startup",  # `avserve classify` one file, gateway start to ready
    "long_video",  # 1-10 min 1080p through the gateway: peak RSS, decode time vs duration
    "scaling",  # autoscaling signals and HPA/KEDA replicas under a load ramp (gateway+worker)
)


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmarks: {unknown}; known: {list(BENCHMARKS)}")
        return 2
    failed = []
    for name in chosen:
        print(f"\n=== bench_{name} ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"])
        print(f"=== bench_{name}: exit {code} in {time.perf_counter() - t0:.0f} s ===", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
