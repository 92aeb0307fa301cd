"""How large a heavy-model batch pays off, measured on the runtime at start-up.

Cross-request batching helps when a batch of n clips costs less than n single calls: on a GPU,
and on a CPU for a small model (the shipped tiny AVSlowFast gains 1.4-1.6x at 8). For a large
model on a CPU it does not: ``avslowfast_r50_4x16`` on one core took 0.97 s per clip alone,
0.84 s per clip in batches of 2, 1.06 at 4 and 1.46 at 8 (the activations of a big batch no
longer fit the caches), so a batcher that fills batches of 8 runs it at about half the
throughput of batches of 2. ``tune_max_batch`` times the runtime at 1, 2, 4, ... clips up to
the configured maximum, stops at the first size that costs more per clip than the best so far
by more than ``tolerance``, and returns the largest size within ``tolerance`` of the best.

Timing is built for a busy machine (noise only ever adds time): each size keeps its fastest of
a few runs, and a size that looks worse is re-timed alternately with the best one before it
may stop the search. With one run per size, a single slow call at 2 clips (the shipped model
costs about the same per clip at 1 and 2, and less at 4 and 8) ended the search at 1 and
turned batching off for the life of the process: in a peer benchmark it served 0.57x the
throughput of LitServe at 16 clients. Re-timing stops once a size has used ``budget_s``, so a
large model, whose every batch takes seconds, is timed about twice per size.
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
    repeats: int = 3,
    budget_s: float = 0.5,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[int, list[BatchTiming]]:
    """(the batch size to cap at, the timings). ``run(n)`` runs one batch of ``n`` clips.

    Each size is run once untimed (first calls at a new shape pay set-up), then timed up to
    ``repeats`` times while its timed runs have used less than ``budget_s``; the fastest run
    counts. A size that looks worse than the best so far is timed again, alternating with the
    best size (up to ``repeats`` rounds, at least one, within ``budget_s``), before it may end
    the search: a busy moment must hit both sizes to decide between them.
    """
    fastest: dict[int, float] = {}  # seconds per clip, best run

    def timed(size: int) -> float:
        t0 = clock()
        run(size)
        took = clock() - t0
        fastest[size] = min(fastest.get(size, float("inf")), took / size)
        return took

    def worse(size: int) -> bool:
        return fastest[size] > min(fastest.values()) * (1 + tolerance)

    for size in candidate_sizes(max_batch):
        run(size)
        spent = 0.0
        for _ in range(max(repeats, 1)):
            spent += timed(size)
            if spent >= budget_s:
                break
        spent = 0.0
        for _ in range(max(repeats, 1)):
            if not worse(size) or spent >= budget_s:
                break
            spent += timed(min(fastest, key=fastest.__getitem__)) + timed(size)
        if worse(size):
            break  # bigger batches only get worse from here on a saturated device
    best = min(fastest.values())
    chosen = max(n for n, t in fastest.items() if t <= best * (1 + tolerance))
    return chosen, [BatchTiming(n, t) for n, t in fastest.items()]


class SpareThreadChoice:
    """Online choice, for full batches, between every torch thread and ``spare`` fewer.

    A full batch means the process is saturated, and then the forward may share the cores with
    HTTP parsing and decoding. For a small model that is cheap to serve those compete hard: an
    OpenMP team spanning every core stalls at each barrier while one of its threads is
    preempted (shipped model, 2 cores, 64 clients: a batch of 8 cost 2.4x its time alone). For
    a large model the serving work is negligible beside the forward and every thread pays.
    Which holds depends on the model, the requests and the machine, so it is measured. Full
    batches run on every thread while they cost no more than ``contention`` times
    ``reference_s`` (seconds per clip alone, from the start-up tuning; without it, always).
    Beyond that, fewer threads are tried, then full batches use the cheaper option
    (seconds per clip, an EWMA) and now and then one re-tries the other, so the choice
    follows the load, and a model that is never slowed down never pays for a probe.

    A probe is a batch run the slower way, and every request queued behind it waits longer:
    under 64 clients each request waits out about eight full batches, so with a probe every
    16th batch half the requests wait behind one, which reaches the p99. So the gap between
    probes starts at ``probe_every`` batches and doubles, up to ``max_probe_every``, each time
    a probe confirms the choice; it falls back to ``probe_every`` when a probe overturns it or
    the chosen option's cost drifts ``drift`` times above what it was when last confirmed (the
    load changed: look again soon).
    """

    def __init__(
        self,
        spare: int,
        *,
        reference_s: float | None = None,
        contention: float = 1.25,
        probe_every: int = 16,
        max_probe_every: int = 512,
        drift: float = 1.25,
        weight: float = 0.3,
    ) -> None:
        if not 1 <= probe_every <= max_probe_every:
            raise ValueError("1 <= probe_every <= max_probe_every")
        self.spare = spare
        self.reference_s = reference_s
        self.contention = contention
        self.probe_every = probe_every
        self.max_probe_every = max_probe_every
        self.drift = drift
        self.weight = weight
        self.cost: dict[int, float | None] = {0: None, spare: None}
        self.gap = probe_every  # full batches from one probe to the next
        self._since_probe = 0
        self._probing_for: int | None = None  # the choice a probe in flight is testing
        self._confirmed_s: float | None = None  # the choice's cost when a probe last kept it
        self.short_batches = 0  # batches observed on ``spare`` fewer threads

    def contended(self) -> bool:
        """Do full batches on every thread cost clearly more than they do alone?"""
        every = self.cost[0]
        if every is None:
            return False
        return self.reference_s is not None and every > self.contention * self.reference_s

    def next(self) -> int:
        """Threads to spare for the next full batch."""
        if self.spare <= 0 or not self.contended():
            return 0
        fewer = self.cost[self.spare]
        if fewer is None:
            return self.spare
        self._since_probe += 1
        best = self.best()
        if self._since_probe >= self.gap:
            self._since_probe = 0
            self._probing_for = best
            return self.spare if best == 0 else 0
        return best

    def best(self) -> int:
        known = {k: v for k, v in self.cost.items() if v is not None}
        return min(known, key=lambda k: known[k]) if known else 0

    def observe(self, spared: int, seconds_per_clip: float) -> None:
        if spared not in self.cost:
            return
        self.short_batches += spared > 0
        old = self.cost[spared]
        self.cost[spared] = (
            seconds_per_clip if old is None else old + self.weight * (seconds_per_clip - old)
        )
        kept = self._probing_for
        if kept is not None and spared != kept:  # the probe's own result
            self._probing_for = None
            if self.best() == kept:
                self.gap = min(2 * self.gap, self.max_probe_every)
                self._confirmed_s = self.cost[kept]
            else:
                self._reset_gap()
        elif spared == self.best() and self._confirmed_s is not None:
            now = self.cost[spared]
            if now is not None and now > self.drift * self._confirmed_s:
                self._reset_gap()

    def _reset_gap(self) -> None:
        self.gap, self._since_probe, self._confirmed_s = self.probe_every, 0, None
