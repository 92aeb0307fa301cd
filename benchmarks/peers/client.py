"""The one closed-loop HTTP client every served-throughput comparison uses (asyncio + httpx).

``concurrency`` clients each send their next request as soon as the previous one answered,
until ``requests`` answers arrived. Closed loops measure capacity at a fixed concurrency (the
comparison the peers publish); open-loop load with SLOs is the Locust profile in loadtests/.
The same client drives every server compared, so its own cost is the same on each side.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# One request: keyword arguments of ``httpx.AsyncClient.post`` (files/data, json or content).
Body = dict[str, Any]


@dataclass
class LoadResult:
    concurrency: int
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: int) -> float:
        if not self.latencies_s:
            return float("nan")
        if len(self.latencies_s) == 1:
            return self.latencies_s[0] * 1000
        return statistics.quantiles(self.latencies_s, n=100, method="inclusive")[q - 1] * 1000

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


async def closed_loop(
    base_url: str,
    path: str,
    body: Callable[[int], Body],
    *,
    concurrency: int,
    requests: int,
    timeout_s: float = 600.0,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST ``body(i)`` for i in range(requests) from ``concurrency`` closed-loop clients."""
    result = LoadResult(concurrency=concurrency)
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=timeout_s, limits=limits, headers=headers
    ) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                i, next_index = next_index, next_index + 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(path, **body(i))
                except httpx.TransportError:
                    result.transport_errors += 1
                    continue
                result.statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    result.latencies_s.append(time.perf_counter() - t0)

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - t_start
    return result


def run_closed_loop(
    base_url: str, path: str, body: Callable[[int], Body], **kwargs: Any
) -> LoadResult:
    return asyncio.run(closed_loop(base_url, path, body, **kwargs))
