"""Capping the batch size where bigger batches stop paying (service.batch_tuning)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pytest

from service.batch_tuning import SpareThreadChoice, candidate_sizes, tune_max_batch
from service.batcher import BatcherConfig, DynamicBatcher

from .test_batcher import SlowRuntime, clips, expected


class Costs:
    """``run(n)`` advances a fake clock by ``per_clip[n] * n`` seconds and records ``n``;
    ``slow`` makes the listed calls (0-based, over all calls) take ``factor`` times longer."""

    def __init__(
        self, per_clip: Mapping[int, float], slow: set[int] | None = None, factor: float = 1.5
    ) -> None:
        self.per_clip, self.now = per_clip, 0.0
        self.sizes: list[int] = []
        self.slow, self.factor = slow or set(), factor

    def run(self, n: int) -> None:
        extra = self.factor if len(self.sizes) in self.slow else 1.0
        self.sizes.append(n)
        self.now += self.per_clip[n] * n * extra

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


def test_one_slow_call_does_not_end_the_search_and_turn_batching_off() -> None:
    # The shipped model on 2 cores (ms per clip at 1, 2, 4, 8; measured): 2 costs about what
    # 1 does, so a single slow timed call at 2 used to stop the search at a cap of 1.
    per_clip = {1: 0.0170, 2: 0.0172, 4: 0.0137, 8: 0.0136}
    c = Costs(per_clip, slow={5})  # size 1: untimed + 3 timed; size 2: untimed, then this one
    assert tune_max_batch(c.run, 8, clock=c.clock)[0] == 8
    # Even with one timed run per size, the slow call is re-timed against size 1 first.
    c = Costs(per_clip, slow={3})
    cap, timings = tune_max_batch(c.run, 8, repeats=1, clock=c.clock)
    assert cap == 8
    assert c.sizes[:6] == [1, 1, 2, 2, 1, 2]
    assert timings[1].seconds_per_clip == pytest.approx(0.0172)


def test_a_size_that_stays_slower_still_ends_the_search() -> None:
    c = Costs({1: 0.010, 2: 0.013, 4: 0.005, 8: 0.004})
    cap, timings = tune_max_batch(c.run, 8, clock=c.clock)
    assert cap == 1
    assert [t.size for t in timings] == [1, 2]


def test_sizes_that_take_long_are_timed_once() -> None:
    c = Costs({1: 0.97, 2: 0.84, 4: 1.06, 8: 1.46})
    tune_max_batch(c.run, 8, clock=c.clock)
    # one untimed and one timed run each; 4 looks worse, so 2 and 4 are timed once more
    assert c.sizes == [1, 1, 2, 2, 4, 4, 2, 4]
    c = Costs({1: 0.01, 2: 0.009, 4: 0.008, 8: 0.007})
    tune_max_batch(c.run, 8, clock=c.clock)
    assert c.sizes == [n for n in (1, 2, 4, 8) for _ in range(4)]


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


def test_spare_thread_choice_tries_both_then_keeps_the_cheaper_and_probes_the_other() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=4)
    assert choice.next() == 0
    choice.observe(0, 0.030)
    assert choice.next() == 1
    choice.observe(1, 0.010)
    picks = [choice.next() for _ in range(8)]
    assert picks == [1, 1, 1, 0, 1, 1, 1, 0]


def test_spare_thread_choice_follows_a_change_in_load() -> None:
    choice = SpareThreadChoice(spare=1, probe_every=2, weight=0.5)
    choice.observe(0, 0.010)
    choice.observe(1, 0.020)
    assert choice.best() == 0
    for _ in range(4):  # the load rises: every thread now costs more than one fewer
        choice.observe(0, 0.040)
    assert choice.best() == 1


def test_spare_thread_choice_never_probes_while_full_batches_cost_what_they_cost_alone() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=2)
    picks = []
    for _ in range(6):
        picks.append(choice.next())
        choice.observe(picks[-1], 0.011)  # within 25% of the batch's cost alone
    assert picks == [0] * 6


def test_spare_thread_choice_tries_fewer_threads_once_full_batches_slow_down() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010)
    choice.observe(choice.next(), 0.024)  # 2.4x its cost alone: the cores are contended
    assert choice.contended()
    assert choice.next() == 1


def test_spare_thread_choice_without_a_start_up_timing_keeps_every_thread() -> None:
    choice = SpareThreadChoice(spare=1)
    choice.observe(choice.next(), 1.0)
    assert [choice.next() for _ in range(4)] == [0] * 4


def test_spare_thread_choice_with_nothing_to_spare_always_uses_every_thread() -> None:
    choice = SpareThreadChoice(spare=0)
    assert [choice.next() for _ in range(5)] == [0] * 5


def _probes(choice: SpareThreadChoice, batches: int, cost: dict[int, float]) -> list[int]:
    """Run ``batches`` full batches at fixed costs; the indices of those that probed."""
    probes = []
    for i in range(batches):
        spared = choice.next()
        if spared != choice.best():
            probes.append(i)
        choice.observe(spared, cost[spared])
    return probes


def test_probes_grow_rarer_while_they_confirm_the_choice() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=4, max_probe_every=32)
    probes = _probes(choice, 200, {0: 0.030, 1: 0.015})
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    # The first is the initial try of one thread fewer; then 4, 8, 16 batches, capped at 32.
    assert gaps[:4] == [4, 8, 16, 32] and set(gaps[4:]) == {32}
    assert choice.best() == 1


def test_a_probe_that_overturns_the_choice_brings_probes_back_to_their_first_rate() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=4, weight=1.0)
    _probes(choice, 60, {0: 0.030, 1: 0.015})
    assert choice.gap > 4
    _probes(choice, choice.gap, {0: 0.012, 1: 0.015})  # every thread is now the cheaper
    assert choice.best() == 0 and choice.gap == 4


def test_a_drift_in_the_chosen_cost_brings_probes_back_to_their_first_rate() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=4, weight=1.0)
    _probes(choice, 60, {0: 0.060, 1: 0.015})
    assert choice.gap > 4
    choice.observe(choice.next(), 0.025)  # one thread fewer got dearer, still the cheaper
    assert choice.best() == 1 and choice.gap == 4


def test_the_choice_counts_the_batches_it_ran_short() -> None:
    choice = SpareThreadChoice(spare=1, reference_s=0.010, probe_every=4)
    picks = []
    for _ in range(20):
        picks.append(choice.next())
        choice.observe(picks[-1], {0: 0.030, 1: 0.015}[picks[-1]])
    assert choice.short_batches == picks.count(1) > 0
