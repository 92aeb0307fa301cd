"""Dynamic batcher behaviour against a slow fake runtime (the runtime is the only fake)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from service.batcher import BatcherConfig, DynamicBatcher
from service.errors import AvserveError, CapacityError
from service.metrics import Metrics
from service.runtime_spec import InputSpec, TensorSpec
from service.schemas import Priority

T, S, N = 2, 4, 8


class SlowRuntime:
    """Records every batch it runs; logits = [marker, clip index] read back from the inputs.

    ``gate`` (when given) blocks each run until set, so tests control when the device is busy.
    """

    name = "fake"
    device = "cpu"

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.spec = InputSpec(
            (TensorSpec("frames", (None, S, S, 3), "uint8"), TensorSpec("audio", (N,), "float32"))
        )
        self.delay_s = delay_s
        self.gate = gate
        self.batches: list[list[tuple[int, int]]] = []  # per batch: (marker, clip) per row
        self.started = threading.Event()
        self.fail_with: Exception | None = None

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(3), "test never released the gate"
        time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        frames, audio = inputs["frames"], inputs["audio"]
        markers = frames[:, 0, 0, 0, 0].astype(np.float32)
        clips = audio[:, 0]
        self.batches.append([(int(m), int(c)) for m, c in zip(markers, clips, strict=True)])
        return np.stack([markers, clips], axis=1)

    def warmup(self, batch_size: int) -> None:
        self.run(self.spec.example(batch_size))

    def ran_marker(self, marker: int) -> bool:
        return any(m == marker for batch in self.batches for m, _ in batch)


def clips(marker: int, k: int, frames: int = T) -> dict[str, np.ndarray]:
    """K clips whose pixels carry ``marker`` and whose audio carries the clip index."""
    f = np.full((k, frames, S, S, 3), marker, dtype=np.uint8)
    a = np.repeat(np.arange(k, dtype=np.float32)[:, None], N, axis=1)
    return {"frames": f, "audio": a}


def expected(marker: int, k: int) -> np.ndarray:
    return np.stack([np.full(k, marker, np.float32), np.arange(k, dtype=np.float32)], axis=1)


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition never became true"
        await asyncio.sleep(0.005)


async def test_each_request_gets_back_its_own_logits_in_clip_order() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=5, max_queue_delay_ms=20)) as b:
        outs = await asyncio.gather(*(b.infer(clips(m, k)) for m, k in [(1, 3), (2, 1), (3, 4)]))
    for (m, k), out in zip([(1, 3), (2, 1), (3, 4)], outs, strict=True):
        np.testing.assert_array_equal(out, expected(m, k))


async def test_concurrent_requests_are_merged_into_one_batch() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=8, max_queue_delay_ms=200)) as b:
        await asyncio.gather(*(b.infer(clips(m, 2)) for m in range(4)))
    assert len(rt.batches) == 1
    assert sorted(m for m, _ in rt.batches[0]) == [0, 0, 1, 1, 2, 2, 3, 3]


async def test_batches_never_exceed_max_batch_size() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=3, max_queue_delay_ms=50)) as b:
        outs = await asyncio.gather(*(b.infer(clips(m, 4)) for m in range(5)))
    assert max(len(batch) for batch in rt.batches) == 3
    assert sum(len(batch) for batch in rt.batches) == 20
    for m, out in enumerate(outs):
        np.testing.assert_array_equal(out, expected(m, 4))


async def test_a_lone_request_runs_without_waiting_for_a_full_batch() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=64, max_queue_delay_ms=10)) as b:
        out = await asyncio.wait_for(b.infer(clips(7, 2)), timeout=5)
    np.testing.assert_array_equal(out, expected(7, 2))
    assert [len(batch) for batch in rt.batches] == [2]


async def test_items_of_different_shapes_never_share_a_batch() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=16, max_queue_delay_ms=100)) as b:
        outs = await asyncio.gather(
            b.infer(clips(1, 2, frames=2)), b.infer(clips(2, 2, frames=3)), b.infer(clips(3, 1))
        )
    batches = sorted(sorted(m for m, _ in batch) for batch in rt.batches)
    assert batches == [[1, 1, 3], [2, 2]]
    np.testing.assert_array_equal(outs[1], expected(2, 2))


async def test_interactive_clips_run_before_waiting_batch_clips() -> None:
    gate = threading.Event()
    rt = SlowRuntime(gate=gate)
    cfg = BatcherConfig(max_batch_size=2, max_queue_delay_ms=0)
    async with DynamicBatcher(rt, cfg) as b:
        busy = asyncio.create_task(b.infer(clips(1, 2)))
        await wait_until(rt.started.is_set)
        # The device is busy; a batch job arrives first, then an interactive request. One full
        # batch of the job is assembled ahead (stacked while the device runs); the rest waits.
        job = asyncio.create_task(b.infer(clips(2, 6), Priority.BATCH))
        await wait_until(lambda: b.queued == 4)
        live = asyncio.create_task(b.infer(clips(3, 2), Priority.INTERACTIVE))
        await wait_until(lambda: b.queued == 6)
        gate.set()
        await asyncio.gather(busy, job, live)
    assert [batch[0][0] for batch in rt.batches] == [1, 2, 3, 2, 2]


async def test_clips_whose_deadline_passes_in_the_queue_fail_and_never_run() -> None:
    gate = threading.Event()
    rt = SlowRuntime(gate=gate)
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=2, max_queue_delay_ms=0)) as b:
        busy = asyncio.create_task(b.infer(clips(1, 2)))
        await wait_until(rt.started.is_set)
        with pytest.raises(CapacityError) as err:
            await b.infer(clips(2, 2), deadline=time.monotonic() + 0.1)
        assert err.value.code == "deadline_exceeded"
        assert err.value.http_status == 504
        assert b.queued == 0
        gate.set()
        await busy
        await b.infer(clips(3, 1))
    assert not rt.ran_marker(2)


async def test_a_deadline_already_past_is_refused_at_once() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt) as b:
        with pytest.raises(CapacityError) as err:
            await b.infer(clips(1, 1), deadline=time.monotonic() - 1)
    assert err.value.code == "deadline_exceeded"
    assert rt.batches == []


async def test_a_full_queue_pushes_back_with_overloaded_and_retry_after() -> None:
    gate = threading.Event()
    rt = SlowRuntime(gate=gate)
    cfg = BatcherConfig(max_batch_size=2, max_queue_delay_ms=0, max_queue_items=4)
    async with DynamicBatcher(rt, cfg) as b:
        busy = asyncio.create_task(b.infer(clips(1, 2)))
        await wait_until(rt.started.is_set)
        # Two of these clips are assembled into the next batch at once; two stay queued.
        waiting = asyncio.create_task(b.infer(clips(2, 4)))
        await wait_until(lambda: b.queued == 2)
        with pytest.raises(CapacityError) as err:
            await b.infer(clips(3, 3))  # 2 waiting + 3 > 4
        assert err.value.code == "overloaded"
        assert err.value.http_status == 429
        assert err.value.retry_after_s is not None and err.value.retry_after_s >= 1
        assert b.queued == 2  # the refused request left nothing behind
        gate.set()
        await asyncio.gather(busy, waiting)
    assert not rt.ran_marker(3)


async def test_a_disconnected_callers_queued_clips_are_dropped() -> None:
    gate = threading.Event()
    rt = SlowRuntime(gate=gate)
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=2, max_queue_delay_ms=0)) as b:
        busy = asyncio.create_task(b.infer(clips(1, 2)))
        await wait_until(rt.started.is_set)
        # Two clips are assembled into the next batch while the device is busy, two stay queued.
        gone = asyncio.create_task(b.infer(clips(2, 4)))
        await wait_until(lambda: b.queued == 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert b.queued == 0
        gate.set()
        await busy
        np.testing.assert_array_equal(await b.infer(clips(3, 2)), expected(3, 2))
    assert not rt.ran_marker(2)


async def test_batching_off_never_mixes_requests() -> None:
    rt = SlowRuntime()
    cfg = BatcherConfig(max_batch_size=8, max_queue_delay_ms=100, cross_request=False)
    async with DynamicBatcher(rt, cfg) as b:
        await asyncio.gather(*(b.infer(clips(m, 2)) for m in range(4)))
    assert sorted(sorted(m for m, _ in batch) for batch in rt.batches) == [
        [0, 0],
        [1, 1],
        [2, 2],
        [3, 3],
    ]


async def test_close_finishes_queued_work_then_refuses_new_work() -> None:
    rt = SlowRuntime(delay_s=0.02)
    b = DynamicBatcher(rt, BatcherConfig(max_batch_size=2, max_queue_delay_ms=0))
    await b.start()
    pending = [asyncio.create_task(b.infer(clips(m, 2))) for m in range(3)]
    await wait_until(lambda: rt.started.is_set())
    await b.close(grace_s=5)
    for m, task in enumerate(pending):
        np.testing.assert_array_equal(await task, expected(m, 2))
    with pytest.raises(CapacityError) as err:
        await b.infer(clips(9, 1))
    assert err.value.code == "shutting_down"
    assert err.value.http_status == 503


async def test_close_fails_what_the_grace_period_could_not_finish() -> None:
    gate = threading.Event()
    rt = SlowRuntime(gate=gate)
    b = DynamicBatcher(rt, BatcherConfig(max_batch_size=1, max_queue_delay_ms=0))
    await b.start()
    running = asyncio.create_task(b.infer(clips(1, 1)))
    queued = asyncio.create_task(b.infer(clips(2, 1)))
    await wait_until(rt.started.is_set)
    await b.close(grace_s=0.05)
    gate.set()
    for task in (running, queued):
        with pytest.raises(CapacityError) as err:
            await task
        assert err.value.code == "shutting_down"


async def test_a_failing_model_fails_the_batch_with_a_typed_error() -> None:
    rt = SlowRuntime()
    rt.fail_with = RuntimeError("CUDA out of memory (pretend)")
    async with DynamicBatcher(rt) as b:
        with pytest.raises(AvserveError) as err:
            await b.infer(clips(1, 2))
        assert err.value.code == "internal"
        assert "CUDA" not in err.value.message
        rt.fail_with = None
        np.testing.assert_array_equal(await b.infer(clips(2, 1)), expected(2, 1))


@pytest.mark.parametrize(
    "inputs",
    [
        {"frames": np.zeros((2, T, S, S, 3), np.uint8)},
        {"frames": np.zeros((2, T, S, S, 3), np.float32), "audio": np.zeros((2, N), np.float32)},
        {"frames": np.zeros((2, T, S, S, 3), np.uint8), "audio": np.zeros((3, N), np.float32)},
        {"frames": np.zeros((2, T, S, 5, 3), np.uint8), "audio": np.zeros((2, N), np.float32)},
        {"frames": np.zeros((0, T, S, S, 3), np.uint8), "audio": np.zeros((0, N), np.float32)},
    ],
    ids=["missing-input", "wrong-dtype", "clip-count-mismatch", "wrong-shape", "no-clips"],
)
async def test_malformed_inputs_are_refused_as_invalid_request(
    inputs: dict[str, np.ndarray],
) -> None:
    async with DynamicBatcher(SlowRuntime()) as b:
        with pytest.raises(AvserveError) as err:
            await b.infer(inputs)
    assert err.value.code == "invalid_request"


async def test_metrics_count_inferences_and_executions() -> None:
    metrics = Metrics()
    rt = SlowRuntime()
    cfg = BatcherConfig(max_batch_size=4, max_queue_delay_ms=100)
    async with DynamicBatcher(rt, cfg, model_name="m", metrics=metrics) as b:
        await asyncio.gather(*(b.infer(clips(i, 2)) for i in range(4)))
    reg = metrics.registry
    assert reg.get_sample_value("avserve_batcher_clips_total", {"model": "m"}) == 8
    assert reg.get_sample_value("avserve_batcher_batches_total", {"model": "m"}) == len(rt.batches)
    assert reg.get_sample_value("avserve_batcher_batch_size_count", {"model": "m"}) == len(
        rt.batches
    )
    assert reg.get_sample_value("avserve_batcher_queue_wait_seconds_count", {"model": "m"}) == 8
    assert reg.get_sample_value("avserve_batcher_queue_depth", {"model": "m", "lane": "batch"}) == 0


async def test_warmup_runs_a_batch_on_the_device_thread() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt) as b:
        await b.warmup(3)
    assert [len(batch) for batch in rt.batches] == [3]
