"""The batcher's load-dependent rules: the arrival-rate-aware delay and the thread choice
for full batches (``ArrivalRate``, ``SpareThreadChoice``), against fake runtimes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from service.batch_items import ArrivalRate
from service.batcher import BatcherConfig, DynamicBatcher
from service.executor import ModelThread
from tests.pipeline.test_batcher import SlowRuntime, clips


def test_arrival_rate_knows_nothing_until_two_requests_have_come() -> None:
    rate = ArrivalRate()
    assert rate.due_before(0.0)
    rate.observe(10.0)
    assert rate.due_before(10.0)


def test_arrival_rate_expects_the_next_request_one_average_gap_after_the_last() -> None:
    rate = ArrivalRate(weight=0.5)
    for t in (0.0, 0.1, 0.2, 0.3):
        rate.observe(t)
    assert not rate.due_before(0.35)
    assert rate.due_before(0.41)


def test_arrival_rate_counts_a_long_idle_spell_as_at_most_max_gap() -> None:
    rate = ArrivalRate(weight=1.0, max_gap_s=1.0)
    rate.observe(0.0)
    rate.observe(600.0)
    assert rate.due_before(601.0)


async def test_a_lone_request_after_a_slow_trickle_does_not_wait_for_companions() -> None:
    rt = SlowRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=8, max_queue_delay_ms=600)) as b:
        await b.infer(clips(1, 1))  # nothing known yet: waits the delay
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await b.infer(clips(2, 1))  # the last gap (~0.8 s) says nobody comes within 0.6 s
        assert time.monotonic() - t0 < 0.45


async def test_with_adaptive_delay_off_a_lone_request_waits_the_full_delay() -> None:
    rt = SlowRuntime()
    cfg = BatcherConfig(max_batch_size=8, max_queue_delay_ms=600, adaptive_delay=False)
    async with DynamicBatcher(rt, cfg) as b:
        await b.infer(clips(1, 1))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await b.infer(clips(2, 1))
        assert time.monotonic() - t0 >= 0.55


class ThreadCountingRuntime(SlowRuntime):
    """Records the torch intra-op thread count of each batch; ``cost_s`` maps it to a run time."""

    def __init__(self, cost_s: dict[int, float] | None = None) -> None:
        super().__init__()
        self.threads: list[int] = []
        self.cost_s = cost_s or {}

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        n = torch.get_num_threads()
        self.threads.append(n)
        time.sleep(self.cost_s.get(n, 0.0))
        return super().run(inputs)


async def _full_batches_under_load(
    rt: ThreadCountingRuntime, loaded_s: dict[int, float], cfg: BatcherConfig, tune: bool = True
) -> tuple[list[int], int]:
    """Start-up tuning at ``rt``'s costs, then six full batches of 2 at ``loaded_s`` and one
    lone clip: the thread counts after start-up, and the model thread's count at the end."""
    torch = pytest.importorskip("torch")
    device = ModelThread("test-model")
    try:
        device.call(torch.set_num_threads, 2)
        async with DynamicBatcher(rt, cfg, executor=device) as b:
            if tune:
                await b.tune()
            started = len(rt.threads)
            rt.cost_s = loaded_s  # the process gets busy: HTTP parsing, decoding
            for m in range(6):
                await asyncio.gather(b.infer(clips(m, 1)), b.infer(clips(m, 1)))
            await b.infer(clips(9, 1))
        return rt.threads[started:], int(device.call(torch.get_num_threads))
    finally:
        device.shutdown()


FULL = BatcherConfig(max_batch_size=2, max_queue_delay_ms=500, adaptive_delay=False)
ALONE = {2: 0.04, 1: 0.08}  # at start-up every thread pays


async def test_full_batches_move_to_one_thread_fewer_when_load_makes_that_faster() -> None:
    rt = ThreadCountingRuntime(ALONE)
    threads, restored = await _full_batches_under_load(rt, {2: 0.2, 1: 0.05}, FULL)
    assert threads == [2, 1, 1, 1, 1, 1, 2]  # both tried, then the faster; lone: every one
    assert restored == 2


async def test_full_batches_keep_every_thread_when_that_still_runs_faster() -> None:
    rt = ThreadCountingRuntime(ALONE)
    threads, _ = await _full_batches_under_load(rt, {2: 0.2, 1: 0.6}, FULL)
    assert threads == [2, 1, 2, 2, 2, 2, 2]


async def test_full_batches_as_fast_as_at_start_up_never_try_fewer_threads() -> None:
    rt = ThreadCountingRuntime(ALONE)
    threads, _ = await _full_batches_under_load(rt, ALONE, FULL)
    assert threads == [2] * 7


async def test_without_start_up_timings_full_batches_keep_every_thread() -> None:
    rt = ThreadCountingRuntime(ALONE)
    threads, _ = await _full_batches_under_load(rt, {2: 0.2, 1: 0.05}, FULL, tune=False)
    assert threads == [2] * 7


async def test_spare_threads_zero_runs_full_batches_on_every_thread() -> None:
    rt = ThreadCountingRuntime(ALONE)
    cfg = replace(FULL, saturated_spare_threads=0)
    threads, _ = await _full_batches_under_load(rt, {2: 0.2, 1: 0.05}, cfg)
    assert threads == [2] * 7
