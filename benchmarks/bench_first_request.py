"""First request after start-up vs the ones after it, with and without the pipeline warm-up.

For each mode, a fresh ``start_services`` (bundled model, decode pool of 2) is started and
one real video from ../shared/media is classified three times in turn; the first answer's
wall time is compared with the mean of the next two. Start-up time is reported too (the warm-up moves
cost from the first user to the start).

Run: ``python -m benchmarks.bench_first_request`` (or ``make bench BENCH=first_request``).
Writes bench-results/first_request.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "first_request.json"
SHARED = Path(os.environ.get("AVSERVE_SHARED_DIR", REPO.parent / "shared"))
# The same video each time: the first request and the next ones do the same work.
VIDEOS = ("moviepy__chaplin.mp4",) * 3


async def one_start(warmup: bool) -> dict[str, Any]:
    from service.metrics import Metrics
    from service.schemas import ClassifyOptions
    from service.settings import Settings
    from service.wiring import start_services

    settings = Settings()
    t0 = time.perf_counter()
    services = await start_services(settings, Metrics(), jobs=False, warmup=warmup)
    start_s = time.perf_counter() - t0
    walls = []
    try:
        for name in VIDEOS:
            t = time.perf_counter()
            await services.classify(SHARED / "media" / name, ClassifyOptions())
            walls.append(time.perf_counter() - t)
    finally:
        await services.close(5.0)
    return {
        "warmup": warmup,
        "startup_s": round(start_s, 3),
        "first_request_s": round(walls[0], 3),
        "next_requests_mean_s": round(sum(walls[1:]) / len(walls[1:]), 3),
        "requests_s": [round(w, 3) for w in walls],
    }


def main() -> None:
    import torch

    rows = [asyncio.run(one_start(w)) for w in (False, True)]
    print(f"\n{'warm-up':8s} {'start s':>8s} {'1st s':>7s} {'next s':>7s}")
    for r in rows:
        print(
            f"{r['warmup']!s:8s} {r['startup_s']:8.2f} {r['first_request_s']:7.2f} "
            f"{r['next_requests_mean_s']:7.2f}"
        )
    result = {
        "benchmark": "first_request",
        "what": "bundled avsynth model, default policy, moviepy__chaplin.mp4 classified 3 times "
        "per fresh start",
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
