"""Capping the batch size where bigger batches stop paying (service.batch_tuning)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from service.batch_tuning import candidate_sizes, tune_max_batch
from service.batcher import BatcherConfig, DynamicBatcher

from .test_batcher import SlowRuntime, clips, expected


class Costs:
    """``run(n)`` advances a fake clock by ``per_clip[n] * n`` seconds and records ``n``."""

    def __init__(self, per_clip: Mapping[int, float]) -> None:
        self.per_clip, self.now = per_clip, 0.0
        self.sizes: list[int] = []

    def run(self, n: int) -> None:
        self.sizes.append(n)
        self.now += self.per_clip[n] * n

    def clock(self) -> float:
        return self.now


def test_sizes_double_up_to_the_configured_maximum() -> None:
    assert candidate_sizes(8) == [1, 2, 4, 8]
    assert candidate_sizes(6) == [1, 2, 4, 6]
    assert candidate_sizes(1) == [1]


def test_a_large_model_on_a_cpu_is_capped_where_it_is_cheapest_per_clip() -> None:
    # avslowfast_r50_4x16, one CPU core (s per clip at 1, 2, 4, 8; measured)
    c = Costs({1: 0.97, 2: 0.84, 4: 1.06, 8: 1.46})
    cap, timings = tune_max_batch(c.run, 8, clock=c.clock)
    assert cap == 2
    assert [t.size for t in timings] == [1, 2, 4]  # 8 is never tried: 4 was already worse
    assert timings[1].seconds_per_clip == pytest.approx(0.84)


def test_a_small_model_keeps_the_full_batch() -> None:
    c = Costs({1: 0.012, 2: 0.007, 4: 0.005, 8: 0.0045})
    assert tune_max_batch(c.run, 8, clock=c.clock)[0] == 8


def test_within_the_tolerance_the_larger_batch_wins() -> None:
    c = Costs({1: 0.010, 2: 0.0096, 4: 0.0099, 8: 0.0105})
    assert tune_max_batch(c.run, 8, clock=c.clock)[0] == 8
    c = Costs({1: 0.010, 2: 0.0096, 4: 0.0099, 8: 0.0125})
    assert tune_max_batch(c.run, 8, clock=c.clock)[0] == 4


class CostlyRuntime(SlowRuntime):
    """A runtime whose batches of more than two clips cost three times as much per clip."""

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(inputs["frames"])
        self.delay_s = 0.004 * n * (1 if n <= 2 else 3)
        return super().run(inputs)


async def test_the_batcher_caps_its_batches_after_tuning() -> None:
    rt = CostlyRuntime()
    async with DynamicBatcher(rt, BatcherConfig(max_batch_size=8, max_queue_delay_ms=50)) as b:
        timings = await b.tune()
        assert b.config.max_batch_size == 2 and timings[-1].size == 4
        rt.batches.clear()
        out = await b.infer(clips(7, 5))
    assert np.array_equal(out, expected(7, 5))
    assert max(len(batch) for batch in rt.batches) == 2
