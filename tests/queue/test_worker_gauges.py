"""The job queue's consumer and worker gauges agree, and failed items are counted by code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from service.errors import AvserveError
from service.queue.backend import JobBackend
from service.queue.memory_backend import MemoryBackend
from service.queue.redis_backend import RedisBackend
from service.queue.schemas import JobCreate
from service.schemas import ClassifyOptions
from tests.queue.conftest import ServiceFactory, fast_config, item_urls, wait_for
from tests.queue.test_backend_semantics import BATCH, read, submit


@pytest.fixture
async def queue_backend(
    backend_kind: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[JobBackend]:
    if backend_kind == "redis":
        b: JobBackend = RedisBackend(fast_config(redis_url=redis_url, prefix=redis_prefix))
    else:
        b = MemoryBackend(fast_config())
    await b.start()
    yield b
    await b.close()


def lanes(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        s.labels["lane"]: s.value
        for fam in registry.collect()
        if fam.name == name
        for s in fam.samples
    }


async def test_an_idle_worker_counts_as_a_consumer_of_every_lane(
    make_service: ServiceFactory,
) -> None:
    async def never(url: str, options: ClassifyOptions) -> dict[str, Any]:
        raise AssertionError("no item was submitted")

    service = await make_service(never)
    registry = CollectorRegistry()
    service.register_metrics(registry)
    await asyncio.sleep(0.3)  # a few empty reads
    await service._stats.refresh()
    assert registry.get_sample_value("avserve_jobs_workers_alive") == 1
    assert lanes(registry, "avserve_jobs_queue_consumers") == {
        "high": 1,
        "batch": 1,
        "callbacks": 1,
    }


async def test_a_departed_worker_leaves_the_group_and_a_dead_one_once_it_holds_nothing(
    queue_backend: JobBackend,
) -> None:
    backend = queue_backend

    async def consumers() -> dict[str, int]:
        return {s.stream: s.consumers for s in (await backend.stats()).streams}

    await backend.heartbeat("gone", 5.0)
    await backend.heartbeat("dead", 0.2)
    assert set((await consumers()).values()) == {2}
    await backend.forget_consumer("gone")  # a graceful stop
    assert set((await consumers()).values()) == {1}

    await submit(backend, 1)
    (held,) = await read(backend, "dead", 1)  # dies holding an entry
    await asyncio.sleep(0.3)
    await backend.maintain(time.time())
    stats = await backend.stats()
    assert stats.workers_alive == 0
    assert (await consumers())[BATCH] == 1  # its pending entry still names it
    await backend.ack(held)  # reclaimed and finished elsewhere
    await backend.maintain(time.time())
    assert set((await consumers()).values()) == {0}


async def test_failed_items_are_counted_by_lane_and_error_code(
    make_service: ServiceFactory,
) -> None:
    async def processor(url: str, options: ClassifyOptions) -> dict[str, Any]:
        if "bad" in url:
            raise AvserveError("not a video", code="undecodable")
        return {}

    service = await make_service(processor)
    registry = CollectorRegistry()
    service.register_metrics(registry)
    urls = [*item_urls(2), *item_urls(3, "bad")]
    job, _ = await service.submit(
        JobCreate.model_validate({"items": [{"url": u} for u in urls]}), None
    )

    async def finished() -> bool:
        record = await service.backend.get_job(job.id)
        return record is not None and record.finished_at is not None

    await wait_for(finished, 10, "job")
    errors = registry.get_sample_value(
        "avserve_jobs_item_errors_total", {"lane": "batch", "code": "undecodable"}
    )
    assert errors == 3
    done = registry.get_sample_value(
        "avserve_jobs_items_processed_total", {"lane": "batch", "outcome": "done"}
    )
    assert done == 2
