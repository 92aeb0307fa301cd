"""Delivery semantics of both backends, driven directly (no worker loop in between)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.queue import Worker
from service.queue.backend import BackendUnavailable, Delivery, FinishOutcome, JobBackend, NewJob
from service.queue.callbacks import CallbackSender
from service.queue.memory_backend import MemoryBackend
from service.queue.redis_backend import RedisBackend
from tests.queue.conftest import fast_config, item_urls, wait_for
from tests.queue.processors import run_scripted


@pytest.fixture
async def backend(backend_kind: str, redis_url: str, redis_prefix: str) -> Any:
    if backend_kind == "redis":
        b: JobBackend = RedisBackend(fast_config(redis_url=redis_url, prefix=redis_prefix))
    else:
        b = MemoryBackend(fast_config())
    await b.start()
    yield b
    await b.close()


async def submit(
    backend: JobBackend, n: int, *, job_id: str = "a" * 32, lane: str = "batch"
) -> str:
    config = fast_config()
    await backend.submit(
        NewJob(
            job_id=job_id,
            lane=lane,
            stream=config.stream_for_lane(lane),
            urls=tuple(item_urls(n, job_id[:4])),
            options_json="{}",
            callback_url=None,
            body_hash="h",
            idempotency_key=None,
            created_at=time.time(),
        )
    )
    return job_id


BATCH = fast_config().batch_stream


async def read(backend: JobBackend, consumer: str, count: int) -> list[Delivery]:
    return await backend.read(consumer, [BATCH], count, 0)


def done(d: Delivery) -> dict[str, Any]:
    return {"result": {"url": d.url}, "finished_at": time.time(), "deliveries": d.deliveries}


async def test_entry_of_a_silent_consumer_is_reclaimed_after_the_visibility_timeout(
    backend: JobBackend,
) -> None:
    await submit(backend, 1)
    [first] = await read(backend, "a", 1)
    assert first.deliveries == 1
    early = await backend.reclaim("b", BATCH, 0.3, 10)
    assert early.deliveries == []
    await asyncio.sleep(0.35)
    [again] = (await backend.reclaim("b", BATCH, 0.3, 10)).deliveries
    assert (again.entry_id, again.deliveries, again.url) == (first.entry_id, 2, first.url)


async def test_touched_entries_stay_with_their_consumer(backend: JobBackend) -> None:
    await submit(backend, 1)
    [d] = await read(backend, "a", 1)
    await asyncio.sleep(0.25)
    await backend.touch("a", [d])
    await asyncio.sleep(0.1)
    assert (await backend.reclaim("b", BATCH, 0.3, 10)).deliveries == []
    await backend.touch("b", [d])  # not its owner: no effect
    await asyncio.sleep(0.25)
    assert len((await backend.reclaim("b", BATCH, 0.3, 10)).deliveries) == 1


async def test_item_processed_twice_is_reported_once(backend: JobBackend) -> None:
    job_id = await submit(backend, 1)
    [d1] = await read(backend, "a", 1)
    [d2] = (await backend.reclaim("b", BATCH, 0.0, 10)).deliveries
    assert (await backend.begin(d1, time.time())).proceed
    assert (await backend.begin(d2, time.time())).proceed
    first = await backend.finish(d2, "done", done(d2), time.time())
    second = await backend.finish(d1, "failed", {"error": {"code": "x", "message": ""}}, 0.0)
    assert first == FinishOutcome.JOB_COMPLETED
    assert second == FinishOutcome.DUPLICATE
    job = await backend.get_job(job_id)
    assert job is not None and (job.done, job.failed, job.status) == (1, 0, "done")
    [item] = await backend.get_items(job_id, 0, 1)
    assert item.state == "done" and item.record is not None and item.record["deliveries"] == 2
    stats = await backend.stats()
    assert stats.counters["items_done"] == 1 and "items_failed" not in stats.counters
    batch = next(s for s in stats.streams if s.stream == BATCH)
    assert (batch.lag, batch.pending) == (0, 0)
    # A later delivery of the same item is skipped before any work.
    assert (await backend.begin(d1, time.time())).reason == "final"


async def test_released_entry_returns_after_its_delay_with_the_given_count(
    backend: JobBackend,
) -> None:
    await submit(backend, 1)
    [d] = await read(backend, "a", 1)
    error = {"code": "timeout", "message": "slow"}
    await backend.release("someone-else", d, available_in_s=0.0, deliveries=7)  # ignored
    await backend.release("a", d, available_in_s=0.3, deliveries=1, error=error)
    assert (await backend.reclaim("b", BATCH, 1.0, 10)).deliveries == []
    await asyncio.sleep(0.35)
    [again] = (await backend.reclaim("b", BATCH, 1.0, 10)).deliveries
    assert again.deliveries == 2
    # Dead-lettering without an explicit error reports the last recorded one.
    await backend.finish(again, "failed", {"finished_at": 0.0}, time.time(), dead_letter=True)
    [item] = await backend.get_items(d.job_id, 0, 1)
    assert item.record is not None and item.record["error"] == error


async def test_report_for_an_expired_job_is_dropped_and_acknowledged(
    backend_kind: str, redis_url: str, redis_prefix: str
) -> None:
    if backend_kind == "redis":
        b: JobBackend = RedisBackend(
            fast_config(redis_url=redis_url, prefix=redis_prefix, result_ttl_s=0.2)
        )
    else:
        b = MemoryBackend(fast_config(result_ttl_s=0.2))
    await b.start()
    try:
        await submit(b, 1)
        [d] = await read(b, "a", 1)
        await asyncio.sleep(0.3)
        assert (await b.begin(d, time.time())).reason == "gone"
        assert await b.finish(d, "done", done(d), time.time()) == FinishOutcome.JOB_GONE
        batch = next(s for s in (await b.stats()).streams if s.stream == BATCH)
        assert batch.pending == 0
    finally:
        await b.close()


async def test_stats_count_lag_and_pending_per_lane(backend: JobBackend) -> None:
    await submit(backend, 5)
    await submit(backend, 2, job_id="b" * 32, lane="high")
    await read(backend, "a", 2)
    await backend.heartbeat("a", 5.0)
    stats = await backend.stats()
    lanes = {s.stream: s for s in stats.streams}
    assert (lanes[BATCH].lag, lanes[BATCH].pending, lanes[BATCH].backlog) == (3, 2, 5)
    assert (lanes[fast_config().high_stream].lag, lanes[fast_config().high_stream].pending) == (
        2,
        0,
    )
    assert stats.workers_alive == 1
    assert stats.counters["jobs_submitted"] == 2 and stats.counters["items_submitted"] == 7


@pytest.mark.redis
async def test_trimming_drops_only_acknowledged_entries(redis_url: str, redis_prefix: str) -> None:
    config = fast_config(redis_url=redis_url, prefix=redis_prefix)
    backend = RedisBackend(config)
    await backend.start()
    try:
        job_id = await submit(backend, 300)
        deliveries = await read(backend, "a", 260)
        for d in deliveries[:250]:  # 10 stay pending, 40 never delivered
            await backend.finish(d, "done", done(d), time.time())
        key = config.key(BATCH)
        assert await backend.client.xlen(key) == 300
        await backend.maintain(time.time())
        assert await backend.client.xlen(key) < 300  # whole stream nodes below the cut went
        pending = (await backend.reclaim("b", BATCH, 0.0, 100)).deliveries
        fresh = await read(backend, "b", 100)
        indexes = sorted(d.index for d in pending + fresh)
        assert indexes == list(range(250, 300))
        for d in pending + fresh:
            await backend.finish(d, "done", done(d), time.time())
        job = await backend.get_job(job_id)
        assert job is not None and job.status == "done" and job.done == 300
    finally:
        await backend.close()


@pytest.mark.redis
async def test_consumer_group_is_recreated_when_redis_lost_it(
    redis_url: str, redis_prefix: str
) -> None:
    config = fast_config(redis_url=redis_url, prefix=redis_prefix)
    backend = RedisBackend(config)
    await backend.start()
    try:
        await submit(backend, 2)
        await backend.client.xgroup_destroy(config.key(BATCH), config.group)
        got = await read(backend, "a", 10)
        assert sorted(d.index for d in got) == [0, 1]
    finally:
        await backend.close()


async def test_unreachable_redis_is_a_typed_error() -> None:
    backend = RedisBackend(fast_config(redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(BackendUnavailable) as info:
        await backend.start()
    assert info.value.code == "queue_unavailable" and info.value.http_status == 503
    await backend.close()


@pytest.mark.redis
async def test_long_idle_consumers_without_pending_entries_are_forgotten(
    redis_url: str, redis_prefix: str
) -> None:
    config = fast_config(
        redis_url=redis_url,
        prefix=redis_prefix,
        visibility_timeout_s=0.05,
        heartbeat_interval_s=0.01,
    )
    backend = RedisBackend(config)
    await backend.start()
    try:
        await submit(backend, 2)
        [ghost_item] = await read(backend, "ghost", 1)  # a worker that died after finishing
        await backend.finish(ghost_item, "done", done(ghost_item), time.time())
        assert len(await read(backend, "holder", 1)) == 1  # a dead worker still holding an item
        await asyncio.sleep(0.6)
        await backend.maintain(time.time())
        names = {
            c["name"] for c in await backend.client.xinfo_consumers(config.key(BATCH), config.group)
        }
        assert names == {"holder"}  # its item must stay claimable, so it stays
    finally:
        await backend.close()


@pytest.mark.redis
async def test_worker_drops_entries_it_did_not_write(redis_url: str, redis_prefix: str) -> None:
    config = fast_config(redis_url=redis_url, prefix=redis_prefix)
    backend = RedisBackend(config)
    await backend.start()
    worker = Worker(config, backend, run_scripted, sender=CallbackSender(config))
    try:
        await backend.client.xadd(config.key(BATCH), {"hello": "world"})
        await worker.start()

        async def drained() -> bool:
            batch = next(s for s in (await backend.stats()).streams if s.stream == BATCH)
            return batch.backlog == 0

        await wait_for(drained, 5, "the garbage entry to be acknowledged")
    finally:
        await worker.stop(0.5)
        await backend.close()
