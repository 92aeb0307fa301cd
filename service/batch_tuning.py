"""How large a heavy-model batch pays off, measured on the runtime at start-up.

Cross-request batching helps when a batch of n clips costs less than n single calls: on a GPU,
and on a CPU for a small model (the shipped tiny AVSlowFast gains 1.4-1.6x at 8). For a large
model on a CPU it does not: ``avslowfast_r50_4x16`` on one core took 0.97 s per clip alone,
0.84 s per clip in batches of 2, 1.06 at 4 and 1.46 at 8 (the activations of a big batch no
longer fit the caches), so a batcher that fills batches of 8 runs it at about half the
throughput of batches of 2. ``tune_max_batch`` times the runtime at 1, 2, 4, ... clips up to
the configured maximum, stops at the first size that costs more per clip than the best so far
by more than ``tolerance``, and returns the largest size within ``tolerance`` of the best.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchTiming:
    size: int
    seconds_per_clip: float


def candidate_sizes(max_batch: int) -> list[int]:
    """1, 2, 4, ... below ``max_batch``, then ``max_batch`` itself."""
    sizes, n = [], 1
    while n < max_batch:
        sizes.append(n)
        n *= 2
    return [*sizes, max_batch]


def tune_max_batch(
    run: Callable[[int], object],
    max_batch: int,
    *,
    tolerance: float = 0.1,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[int, list[BatchTiming]]:
    """(the batch size to cap at, the timings). ``run(n)`` runs one batch of ``n`` clips; each
    size is run once untimed (first calls at a new shape pay set-up) and once timed."""
    timings: list[BatchTiming] = []
    best = float("inf")
    for size in candidate_sizes(max_batch):
        run(size)
        t0 = clock()
        run(size)
        per_clip = (clock() - t0) / size
        timings.append(BatchTiming(size, per_clip))
        if per_clip > best * (1 + tolerance):
            break  # bigger batches only get worse from here on a saturated device
        best = min(best, per_clip)
    chosen = max(t.size for t in timings if t.seconds_per_clip <= best * (1 + tolerance))
    return chosen, timings
