"""The batcher's queued work: a request's clips as items, and what is done with a batch of them.

``DynamicBatcher`` (``service.batcher``) owns the lanes and the scheduling; this module holds
the per-item state it keeps (``Item``: inputs, shape key, priority, deadline, future, and when
its batch ran), the shape key that decides which items may share a batch, stacking a batch,
and the trace spans a request's items leave behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Mapping

import numpy as np

from service import tracing
from service.schemas import Priority

ShapeKey = tuple[Hashable, ...]


class Request:
    __slots__ = ("done", "items")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.done = False


class Item:
    __slots__ = (
        "batch_size",
        "deadline",
        "ended",
        "enqueued",
        "future",
        "inputs",
        "key",
        "priority",
        "queued",
        "request",
        "started",
    )

    def __init__(
        self,
        request: Request,
        inputs: dict[str, np.ndarray],
        key: ShapeKey,
        priority: Priority,
        deadline: float | None,
        future: asyncio.Future[np.ndarray],
    ) -> None:
        self.request = request
        self.inputs = inputs
        self.key = key
        self.priority = priority
        self.deadline = deadline
        self.enqueued = time.monotonic()
        self.future = future
        self.queued = True  # still in a lane (False once taken into a batch or dropped)
        # When its batch ran (monotonic) and how big it was: the caller's trace spans.
        self.started = self.ended = 0.0
        self.batch_size = 0


def shape_key(inputs: Mapping[str, np.ndarray]) -> ShapeKey:
    return tuple((n, a.shape[1:], a.dtype.str) for n, a in sorted(inputs.items()))


def trace_batches(items: list[Item], model: str) -> None:
    """A request's time in the batcher as two spans: waiting for a batch, then the batches
    its clips ran in (shared with other requests: ``avserve.batch_size`` says how full)."""
    first = min(it.started for it in items)
    attrs = {"avserve.model": model, "avserve.clips": len(items)}
    tracing.record_span("batch_wait", min(it.enqueued for it in items), first, attrs)
    attrs["avserve.batch_size"] = max(it.batch_size for it in items)
    attrs["avserve.batches"] = len({it.started for it in items})
    tracing.record_span("batch_run", first, max(it.ended for it in items), attrs)


def stack(items: list[Item]) -> dict[str, np.ndarray]:
    names = items[0].inputs.keys()
    return {n: np.stack([it.inputs[n] for it in items]) for n in names}


class ArrivalRate:
    """When the next request is due: an EWMA of the gaps between requests (``infer`` calls).

    Until two requests have arrived nothing is known and the next one counts as due, so the
    batcher waits as configured; the first gap seeds the average. Gaps are clipped at
    ``max_gap_s`` so one idle minute does not stop batching for long in the burst after it.
    """

    def __init__(self, weight: float = 0.2, max_gap_s: float = 1.0) -> None:
        self._weight = weight
        self._max_gap_s = max_gap_s
        self._last: float | None = None
        self._gap_s: float | None = None  # None until a second request has arrived

    def observe(self, now: float) -> None:
        if self._last is not None:
            gap = min(max(now - self._last, 0.0), self._max_gap_s)
            old = self._gap_s
            self._gap_s = gap if old is None else old + self._weight * (gap - old)
        self._last = now

    def due_before(self, t: float) -> bool:
        """Is the next request expected by monotonic time ``t``?"""
        if self._last is None or self._gap_s is None:
            return True
        return self._last + self._gap_s <= t
