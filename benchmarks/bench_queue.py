"""Job queue benchmark: queue overhead per item, in-process vs Redis Streams.

With a processor that returns at once, what remains is the queue's own cost:
1. submit: items/s accepted (one job of N items: one Lua script on Redis);
2. drain: items/s through begin → processor → idempotent finish+ack, one worker, concurrency 8;
3. latency: submit → job done for a 1-item job (median / p95 over repeated jobs).
Redis is the one on 127.0.0.1:6379 (REDIS_URL to change), under a throw-away key prefix.
Run: ``python -m benchmarks.bench_queue`` (part of ``make bench``); writes
bench-results/queue.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine as common_machine
from service.queue import JobService, QueueConfig, build_job_service
from service.queue.schemas import JobCreate
from service.schemas import ClassifyOptions

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "queue.json"
ITEMS = 2000
LATENCY_JOBS = 30


def machine() -> dict[str, Any]:
    return {**common_machine(), "redis_py": redis.__version__}


async def instant(url: str, options: ClassifyOptions) -> dict[str, Any]:
    return {"url": url}


def body(n: int, tag: str) -> JobCreate:
    urls = [f"http://bench.example/{tag}/{i}.mp4" for i in range(n)]
    return JobCreate.model_validate({"items": [{"url": u} for u in urls]})


async def wait_done(service: JobService, job_id: str) -> None:
    while True:
        job = await service.get(job_id, limit=0)
        if job.finished_at is not None:
            return
        await asyncio.sleep(0.002)


async def run_backend(kind: str, redis_url: str, prefix: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"concurrency": 8, "read_block_s": 0.05, "max_items_per_job": ITEMS}
    if kind == "redis":
        extra |= {"redis_url": redis_url, "prefix": prefix, "embedded_worker": True}
    config = QueueConfig(**extra)

    # 1 + 2: submit a big job with the worker off, then time the drain.
    service = build_job_service(config, instant)
    t0 = time.perf_counter()
    job, _ = await service.submit(body(ITEMS, "drain"), None)
    submit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await service.start()
    await wait_done(service, job.id)
    drain_s = time.perf_counter() - t0

    # 3: one-item jobs, one at a time.
    latencies = []
    for i in range(LATENCY_JOBS):
        t0 = time.perf_counter()
        one, _ = await service.submit(body(1, f"lat{i}"), None)
        await wait_done(service, one.id)
        latencies.append((time.perf_counter() - t0) * 1000)
    await service.stop(1.0)
    latencies.sort()
    return {
        "backend": kind,
        "submit_items_per_s": ITEMS / submit_s,
        "drain_items_per_s": ITEMS / drain_s,
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))],
    }


def cleanup(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main() -> None:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"avserve-bench:{uuid.uuid4().hex[:8]}"
    rows = [asyncio.run(run_backend("memory", redis_url, prefix))]
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        print(f"redis not reachable at {redis_url} ({exc}); memory backend only")
    else:
        try:
            rows.append(asyncio.run(run_backend("redis", redis_url, prefix)))
        finally:
            cleanup(redis_url, prefix)

    info = machine()
    table = Table(title=f"job queue overhead ({ITEMS} items, no-op processor, concurrency 8)")
    for col in ("backend", "submit items/s", "drain items/s", "1-item job p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["backend"],
            f"{r['submit_items_per_s']:,.0f}",
            f"{r['drain_items_per_s']:,.0f}",
            f"{r['latency_ms_p50']:.1f}",
            f"{r['latency_ms_p95']:.1f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"machine: {info['cpu']}, {info['cores']} cores, python {info['python']}, "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, redis-py {info['redis_py']}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": info, "items": ITEMS, "results": rows}, indent=2))
    console.print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
