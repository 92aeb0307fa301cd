"""Cross-request dynamic batching of heavy-model clips (Triton-style semantics).

A request's K clips become K *items*. Items wait in two priority lanes (interactive before
batch) inside one bounded queue; items of one input shape are stacked into a batch of at most
``max_batch_size`` once the batch is full or its oldest item has waited ``max_queue_delay_ms``.
The model runs off the event loop on the process's model thread, one batch in flight at a time;
while it runs, the next batch is collected and stacked on a second thread, so the device
starts the next batch as soon as the current one returns. Results scatter back per item.

Failure semantics (every one a typed ``AvserveError``):
- queue full -> ``overloaded`` (429 with Retry-After); closing -> ``shutting_down`` (503);
- a request whose deadline passes -> ``deadline_exceeded`` (504); its items that have not
  started are dropped, never run;
- a caller that goes away (its task is cancelled) drops its not-yet-started items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from service import tracing
from service.batch_items import (
    ArrivalRate,
    Item,
    Request,
    ShapeKey,
    shape_key,
    stack,
    trace_batches,
)
from service.batch_tuning import BatchTiming, SpareThreadChoice, tune_max_batch
from service.errors import AvserveError, CapacityError
from service.executor import model_thread, run_with_spare_threads
from service.metrics import Metrics
from service.runtime_spec import Runtime
from service.schemas import Priority

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatcherConfig:
    max_batch_size: int = 8
    max_queue_delay_ms: float = 5.0
    max_queue_items: int = 256  # clips waiting over both lanes; beyond it callers get 429
    cross_request: bool = True  # False = batching off: a batch only holds one request's clips
    autotune: bool = True  # cap max_batch_size where bigger batches stop paying (batch_tuning)
    # Wait for companions only while one is due within the delay (a trickle only adds latency).
    adaptive_delay: bool = True
    # A full batch means the process is saturated: HTTP parsing and decoding compete with the
    # forward for the cores. Full batches try this many fewer torch intra-op threads too and
    # keep whichever runs faster (batch_tuning.SpareThreadChoice); 0: always every thread.
    saturated_spare_threads: int = 1

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_items < 1 or self.max_queue_delay_ms < 0:
            raise ValueError("max_batch_size, max_queue_items >= 1 and max_queue_delay_ms >= 0")
        if self.saturated_spare_threads < 0:
            raise ValueError("saturated_spare_threads >= 0")


def _shutting_down() -> CapacityError:
    return CapacityError("server is shutting down", code="shutting_down")


class DynamicBatcher:
    """Implements ``service.schemas.InferFn`` via :meth:`infer`; use as an async context manager
    or call :meth:`start` / :meth:`close`."""

    def __init__(
        self,
        runtime: Runtime,
        config: BatcherConfig | None = None,
        *,
        model_name: str = "model",
        metrics: Metrics | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config or BatcherConfig()
        self.model_name = model_name
        self.metrics = metrics
        # Default: the process's one model thread, shared with every other batcher and the
        # glance network, so torch has one OpenMP team (service.executor says why).
        self._device: Executor = executor or model_thread()
        self._prep = ThreadPoolExecutor(1, thread_name_prefix="batch-prep")
        self._lanes: dict[Priority, deque[Item]] = {p: deque() for p in Priority}
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._exec_ewma_s = 0.05
        self._arrivals = ArrivalRate()
        self.spare_choice = SpareThreadChoice(self.config.saturated_spare_threads)
        self.inference_count = 0  # clips executed
        self.exec_count = 0  # batches executed

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._schedule(), name=f"batcher-{self.model_name}")

    async def __aenter__(self) -> DynamicBatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def warmup(self, batch_size: int) -> None:
        """Run one dummy batch on the device thread (first CUDA/ORT call pays its set-up here)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._device, self.runtime.warmup, batch_size)

    async def tune(self) -> list[BatchTiming]:
        """Measure the runtime at growing batch sizes on the model thread; cap the batches."""
        loop = asyncio.get_running_loop()
        example = self.runtime.spec.example
        cap, timings = await loop.run_in_executor(
            self._device,
            lambda: tune_max_batch(
                lambda n: self.runtime.run(example(n)), self.config.max_batch_size
            ),
        )
        self.config = replace(self.config, max_batch_size=cap)
        # A full batch's cost alone: what tells contention from the model's own cost.
        self.spare_choice.reference_s = next(
            (t.seconds_per_clip for t in reversed(timings) if t.size <= cap), None
        )
        return timings

    async def close(self, grace_s: float | None = None) -> None:
        """Refuse new work, let queued work finish for up to ``grace_s``, fail what is left."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for lane in self._lanes.values():
            while lane:
                item = lane.popleft()
                item.queued = False
                self._fail(item, _shutting_down())
        self._queued = 0
        self._report_depth()
        self._prep.shutdown(wait=False, cancel_futures=True)

    # -- public API -----------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queued

    @property
    def accepting(self) -> bool:
        return not self._closing

    async def infer(
        self,
        inputs: Mapping[str, np.ndarray],
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> np.ndarray:
        """One request's K clips -> its logits [K, C], batched with other requests' clips."""
        if self._closing:
            raise CapacityError("server is shutting down", code="shutting_down")
        if self._task is None:
            raise CapacityError("batcher not started", code="not_ready")
        self.runtime.spec.check(inputs)
        k = int(next(iter(inputs.values())).shape[0])
        if k == 0:
            raise AvserveError("no clips to run", code="invalid_request")
        if deadline is not None and deadline <= time.monotonic():
            raise CapacityError("deadline passed before inference", code="deadline_exceeded")
        if self._queued + k > self.config.max_queue_items:
            raise CapacityError(
                f"inference queue full ({self._queued} clips waiting)",
                code="overloaded",
                retry_after_s=self._retry_after(),
            )
        loop = asyncio.get_running_loop()
        request = Request()
        self._arrivals.observe(time.monotonic())
        key = shape_key(inputs)
        for i in range(k):
            clip = {n: a[i] for n, a in inputs.items()}
            item = Item(request, clip, key, priority, deadline, loop.create_future())
            request.items.append(item)
            self._lanes[priority].append(item)
        self._queued += k
        self._report_depth()
        self._wakeup.set()
        try:
            async with asyncio.timeout(None if deadline is None else deadline - time.monotonic()):
                results = await asyncio.gather(*(it.future for it in request.items))
        except TimeoutError:
            raise CapacityError(
                "deadline exceeded while waiting for the model", code="deadline_exceeded"
            ) from None
        finally:
            # Success, error, timeout or a vanished caller: nothing of this request stays queued.
            self._drop(request)
        if tracing.enabled():
            trace_batches(request.items, self.model_name)
        return np.stack(results)

    # -- scheduling -----------------------------------------------------------------------------
    def _drop(self, request: Request) -> None:
        if request.done:
            return
        request.done = True
        dropped = 0
        for item in request.items:
            fut = item.future
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # mark retrieved: gather re-raised only the first failure
            if item.queued:
                item.queued = False
                self._lanes[item.priority].remove(item)
                dropped += 1
        if dropped:
            self._queued -= dropped
            self._report_depth()

    def _fail(self, item: Item, err: BaseException) -> None:
        if not item.future.done():
            item.future.set_exception(err)

    def _head_key(self) -> ShapeKey | None:
        for p in Priority:
            if self._lanes[p]:
                return self._lanes[p][0].key
        return None

    def _candidates(self, key: ShapeKey) -> list[Item]:
        """Items of ``key`` in service order (interactive lane first), up to a full batch."""
        cap = self.config.max_batch_size
        out: list[Item] = []
        if not self.config.cross_request:
            head = next(self._lanes[p][0] for p in Priority if self._lanes[p])
            for it in self._lanes[head.priority]:
                if it.request is head.request:
                    out.append(it)
                    if len(out) == cap:
                        break
            return out
        for p in Priority:
            for it in self._lanes[p]:
                if it.key == key:
                    out.append(it)
                    if len(out) == cap:
                        return out
        return out

    def _expire(self) -> None:
        now = time.monotonic()
        for lane in self._lanes.values():
            expired = [it for it in lane if it.deadline is not None and it.deadline <= now]
            for it in expired:
                lane.remove(it)
                it.queued = False
                self._queued -= 1
                self._fail(
                    it, CapacityError("deadline exceeded in queue", code="deadline_exceeded")
                )

    async def _collect(self) -> list[Item] | None:
        """Wait for the next batch: full, or the device idle and the oldest item old enough."""
        delay = self.config.max_queue_delay_ms / 1000.0
        while True:
            self._expire()
            key = self._head_key()
            if key is None:
                if self._closing:
                    return None
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            items = self._candidates(key)
            full = len(items) >= self.config.max_batch_size or not self.config.cross_request
            oldest = min(it.enqueued for it in items)
            waited = time.monotonic() - oldest
            if self.config.adaptive_delay and not self._arrivals.due_before(oldest + delay):
                waited = delay  # nobody is expected within the delay: waiting only adds latency
            if full or (self._idle.is_set() and (waited >= delay or self._closing)):
                for it in items:
                    self._lanes[it.priority].remove(it)
                    it.queued = False
                self._queued -= len(items)
                self._report_depth()
                return items
            # Not ready: wake on new items, on the device going idle, or when the delay expires.
            self._wakeup.clear()
            timeout = max(delay - waited, 0.0) if self._idle.is_set() else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        running: asyncio.Task[None] | None = None
        items: list[Item] | None = None
        try:
            while True:
                items = await self._collect()
                if items is None:
                    break
                # Stack off the loop while the previous batch may still be running.
                batch = await loop.run_in_executor(self._prep, stack, items)
                if running is not None:
                    await running
                self._idle.clear()
                running = asyncio.create_task(self._execute(items, batch))
                items = None
            if running is not None:
                await running
        except asyncio.CancelledError:
            for it in items or ():
                self._fail(it, _shutting_down())
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            raise

    async def _execute(self, items: list[Item], batch: dict[str, np.ndarray]) -> None:
        loop = asyncio.get_running_loop()
        try:
            live = [it for it in items if not it.future.done()]
            if not live:  # every caller left while the batch was being stacked
                return
            started = time.monotonic()
            if self.metrics is not None:
                self.metrics.observe_batch(
                    self.model_name, len(items), [started - it.enqueued for it in items]
                )
            run, spared = self.runtime.run, 0
            full = 1 < self.config.max_batch_size <= len(items)  # the process is saturated
            if full:
                spared = self.spare_choice.next()
                if spared:
                    run = partial(run_with_spare_threads, spared, run)
            try:
                logits = await loop.run_in_executor(self._device, run, batch)
            except asyncio.CancelledError:
                for it in items:
                    self._fail(it, _shutting_down())
                raise
            except Exception as e:
                log.exception("heavy model failed on a batch of %d", len(items))
                err = e if isinstance(e, AvserveError) else AvserveError("model execution failed")
                for it in items:
                    self._fail(it, err)
                return
            ended = time.monotonic()
            self._exec_ewma_s = 0.8 * self._exec_ewma_s + 0.2 * (ended - started)
            if full:
                self.spare_choice.observe(spared, (ended - started) / len(items))
            for it in items:
                it.started, it.ended, it.batch_size = started, ended, len(items)
            self.exec_count += 1
            self.inference_count += len(items)
            if logits.shape[0] != len(items):
                err = AvserveError(f"model returned {logits.shape[0]} rows for {len(items)} clips")
                for it in items:
                    self._fail(it, err)
                return
            for i, it in enumerate(items):
                if not it.future.done():
                    it.future.set_result(logits[i])
        finally:
            self._idle.set()
            self._wakeup.set()

    def _retry_after(self) -> float:
        batches_ahead = self._queued / self.config.max_batch_size + 1
        return float(min(max(batches_ahead * self._exec_ewma_s, 1.0), 30.0))

    def _report_depth(self) -> None:
        if self.metrics is None:
            return
        for p in Priority:
            self.metrics.set_queue_depth(self.model_name, p.name.lower(), len(self._lanes[p]))
