"""Worker shutdown (finish or release within the grace period) and metrics, both backends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from service.queue import QueueConfig, Worker
from service.queue.backend import JobBackend
from service.queue.callbacks import CallbackSender
from service.queue.memory_backend import MemoryBackend
from service.queue.redis_backend import RedisBackend
from service.queue.schemas import JobCreate
from service.queue.service import JobService
from service.schemas import ClassifyOptions
from tests.queue.conftest import ServiceFactory, fast_config, item_urls, wait_for
from tests.queue.processors import hang, run_scripted


@pytest.fixture
def config(backend_kind: str, redis_url: str, redis_prefix: str) -> QueueConfig:
    # A long visibility timeout: only an explicit release can make an item return quickly.
    extra: dict[str, Any] = {"visibility_timeout_s": 30.0, "concurrency": 2}
    if backend_kind == "redis":
        extra |= {"redis_url": redis_url, "prefix": redis_prefix}
    return fast_config(**extra)


@pytest.fixture
async def backend(config: QueueConfig) -> Any:
    b: JobBackend = RedisBackend(config) if config.uses_redis else MemoryBackend(config)
    await b.start()
    yield b
    await b.close()


def worker(config: QueueConfig, backend: JobBackend, processor: Any) -> Worker:
    return Worker(config, backend, processor, sender=CallbackSender(config))


async def submit(service: JobService, urls: list[str]) -> str:
    job, _ = await service.submit(
        JobCreate.model_validate({"items": [{"url": u} for u in urls]}), None
    )
    return job.id


async def test_stop_lets_running_items_finish_within_the_grace_period(
    config: QueueConfig, backend: JobBackend
) -> None:
    started = asyncio.Event()

    async def slow(url: str, options: ClassifyOptions) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.4)
        return {"url": url}

    jobs = JobService(config, backend, None)
    job_id = await submit(jobs, item_urls(1))
    w = worker(config, backend, slow)
    await w.start()
    await asyncio.wait_for(started.wait(), 5)
    await w.stop(grace_s=5.0)
    job = await backend.get_job(job_id)
    assert job is not None and job.status == "done"


async def test_stop_releases_items_that_outlive_the_grace_period(
    config: QueueConfig, backend: JobBackend
) -> None:
    jobs = JobService(config, backend, None)
    job_id = await submit(jobs, item_urls(2))
    stuck = worker(config, backend, hang())
    await stuck.start()
    await wait_for(lambda: _running(backend, job_id, 2), 5, "both items running")
    t0 = time.monotonic()
    await stuck.stop(grace_s=0.2)
    assert time.monotonic() - t0 < 3.0
    # Another worker gets them at its next reaper pass, long before the visibility timeout.
    rescuer = worker(config, backend, run_scripted)
    await rescuer.start()
    try:
        await wait_for(lambda: _finished(backend, job_id), 5, "released items to complete")
    finally:
        await rescuer.stop(1.0)
    items = await backend.get_items(job_id, 0, 2)
    assert [i.state for i in items] == ["done", "done"]
    # Released, not failed: the interrupted delivery does not count against the item.
    assert [i.record["deliveries"] for i in items if i.record] == [1, 1]


async def _running(backend: JobBackend, job_id: str, n: int) -> bool:
    items = await backend.get_items(job_id, 0, n)
    return all(i.state == "running" for i in items)


async def _finished(backend: JobBackend, job_id: str) -> bool:
    job = await backend.get_job(job_id)
    return job is not None and job.finished_at is not None


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_metrics_report_backlog_outcomes_and_latency(
    make_service: ServiceFactory, redis_prefix: str
) -> None:
    registry = CollectorRegistry()
    idle = await make_service(None)
    idle.register_metrics(registry)
    await submit(idle, item_urls(3))
    await idle._stats.refresh()
    assert sample(registry, "avserve_jobs_queue_lag", lane="batch") == 3
    assert sample(registry, "avserve_jobs_queue_depth", lane="batch") == 3
    assert sample(registry, "avserve_jobs_queue_pending", lane="batch") == 0
    assert sample(registry, "avserve_jobs_submitted_total") == 1
    assert sample(registry, "avserve_jobs_active") == 1

    registry = CollectorRegistry()
    busy = await make_service(run_scripted, prefix=f"{redis_prefix}:other")  # own queue
    busy.register_metrics(registry)
    job_id = await submit(
        busy, [*item_urls(2, "m"), "http://videos.example/x.mp4?fail=undecodable"]
    )
    await wait_for(lambda: _finished(busy.backend, job_id), 10, "job")
    await busy._stats.refresh()
    assert sample(registry, "avserve_jobs_items_finished_total", state="done") == 2
    assert sample(registry, "avserve_jobs_items_finished_total", state="failed") == 1
    assert sample(registry, "avserve_jobs_finished_total", state="done") == 1
    assert (
        sample(registry, "avserve_jobs_item_duration_seconds_count", lane="batch", outcome="done")
        == 2
    )
    assert (
        sample(registry, "avserve_jobs_items_processed_total", lane="batch", outcome="failed") == 1
    )
    assert sample(registry, "avserve_jobs_dead_letter_entries") == 0
    assert sample(registry, "avserve_jobs_items_in_flight") == 0
