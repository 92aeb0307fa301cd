"""Closed-loop HTTP load generator for ``POST /v1/classify`` (httpx, asyncio).

``concurrency`` clients each send their next request as soon as the previous one answered,
until ``requests`` answers arrived (or ``duration_s`` passed). Used by
``benchmarks/bench_serving.py``; also runnable by hand::

    python -m loadtests.loadgen http://127.0.0.1:8000 ../shared/media/mdn-ie__flower.mp4 -c 16 -n 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class LoadResult:
    concurrency: int
    wall_s: float
    latencies_s: list[float] = field(default_factory=list)  # successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        if len(self.latencies_s) == 1:
            return self.latencies_s[0] * 1000
        cuts = statistics.quantiles(self.latencies_s, n=100, method="inclusive")
        return cuts[int(q) - 1] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "ok": self.ok,
            "statuses": dict(self.statuses),
            "transport_errors": self.transport_errors,
            "wall_s": round(self.wall_s, 3),
            "throughput_rps": round(self.throughput_rps, 3),
            "p50_ms": round(self.percentile_ms(50), 1),
            "p95_ms": round(self.percentile_ms(95), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
        }


async def run_load(
    base_url: str,
    video: bytes,
    *,
    concurrency: int,
    requests: int,
    duration_s: float | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 300.0,
) -> LoadResult:
    """Send ``requests`` uploads of ``video`` with ``concurrency`` clients in a closed loop."""
    result = LoadResult(concurrency=concurrency, wall_s=0.0)
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=timeout_s, limits=limits, headers=headers
    ) as client:
        t_start = time.perf_counter()
        stop_at = None if duration_s is None else t_start + duration_s

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and (stop_at is None or time.perf_counter() < stop_at):
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(
                        "/v1/classify", files={"file": ("video", video)}, data=form or {}
                    )
                except httpx.TransportError:
                    result.transport_errors += 1
                    continue
                result.statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    result.latencies_s.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - t_start
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_url")
    p.add_argument("video", type=Path)
    p.add_argument("-c", "--concurrency", type=int, default=4)
    p.add_argument("-n", "--requests", type=int, default=100)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--api-key", default=None)
    args = p.parse_args(argv)
    headers = {"X-API-Key": args.api_key} if args.api_key else None
    res = asyncio.run(
        run_load(
            args.base_url,
            args.video.read_bytes(),
            concurrency=args.concurrency,
            requests=args.requests,
            duration_s=args.duration,
            headers=headers,
        )
    )
    for key, value in res.summary().items():
        print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
