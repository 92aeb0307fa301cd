"""One consumer-group member reading a set of streams with bounded concurrency.

Shared by item processing and callback delivery. It owns the delivery mechanics:
read streams in priority order, keep in-flight entries claimed (heartbeat via ``touch``),
reclaim entries other consumers left idle past the visibility timeout (``XAUTOCLAIM``),
hand entries delivered more than ``max_deliveries`` times to ``exhausted`` instead of
``handle``, and on shutdown stop reading, let in-flight work finish within the grace period
and release whatever is left so another worker picks it up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from service.queue.backend import BackendUnavailable, Delivery, JobBackend
from service.queue.config import QueueConfig
from service.queue.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class DeliveryHandler(Protocol):
    async def handle(self, consumer: str, delivery: Delivery) -> None:
        """Process the entry and finish/ack or release it."""
        ...

    async def exhausted(self, consumer: str, delivery: Delivery) -> None:
        """The entry was delivered more than ``max_deliveries`` times: settle it for good."""
        ...


class Backoff:
    """Exponential delay for retrying a store that is down (Redis restarting, failover)."""

    def __init__(self, initial_s: float = 0.05, max_s: float = 5.0) -> None:
        self._initial, self._max = initial_s, max_s
        self._next = initial_s

    def reset(self) -> None:
        self._next = self._initial

    async def sleep(self) -> None:
        delay, self._next = self._next, min(self._next * 2, self._max)
        await asyncio.sleep(delay)


class StreamConsumer:
    """Reads ``streams`` (first = highest priority) as ``consumer``; start()/stop(grace_s)."""

    def __init__(
        self,
        backend: JobBackend,
        config: QueueConfig,
        handler: DeliveryHandler,
        *,
        consumer: str,
        streams: Sequence[str],
        concurrency: int,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._backend = backend
        self._config = config
        self._handler = handler
        self.consumer = consumer
        self._streams = tuple(streams)
        self._concurrency = concurrency
        self.metrics = metrics
        self._active: dict[asyncio.Task[None], Delivery] = {}
        # Dispatched and not settled yet (handler still running, or cancelled by stop()).
        self._unsettled: dict[tuple[str, str], Delivery] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._reader: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._cursors = dict.fromkeys(self._streams, "0-0")

    @property
    def inflight(self) -> list[Delivery]:
        return list(self._unsettled.values())

    def _free(self) -> int:
        return self._concurrency - len(self._active)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        name = f"{self.consumer}:{self._streams[0]}"
        self._reader = asyncio.create_task(self._read_loop(), name=f"read {name}")
        self._loops = [
            asyncio.create_task(self._keepalive_loop(), name=f"keepalive {name}"),
            asyncio.create_task(self._reaper_loop(), name=f"reaper {name}"),
        ]

    async def stop(self, grace_s: float) -> None:
        """Stop reading; wait up to ``grace_s`` for in-flight entries; release the rest."""
        self._stopping = True
        self._slot_freed.set()
        reaper = self._loops[1] if self._loops else None
        if reaper is not None:
            reaper.cancel()
        if self._reader is not None:
            # A blocked read returns within read_block_s; what it brings is released below.
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._active:
            await asyncio.wait(list(self._active), timeout=grace_s)
        leftovers = list(self._active)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self._release_unsettled()

    async def _release_unsettled(self) -> None:
        for key, d in list(self._unsettled.items()):
            try:
                # Not the item's fault: give the delivery back without counting it.
                await asyncio.wait_for(
                    self._backend.release(
                        self.consumer, d, available_in_s=0.0, deliveries=max(0, d.deliveries - 1)
                    ),
                    timeout=2.0,
                )
            except (BackendUnavailable, TimeoutError) as exc:
                log.warning("could not release %s (%s); it will be reclaimed", d.entry_id, exc)
            self._unsettled.pop(key, None)

    # -- dispatch ----------------------------------------------------------------------
    def _dispatch(self, delivery: Delivery) -> None:
        key = (delivery.stream, delivery.entry_id)
        if key in self._unsettled:
            return  # reclaimed from ourselves while still running (touch failed meanwhile)
        if self.metrics is not None and delivery.deliveries > 1:
            self.metrics.redeliveries.labels(self.metrics.lane(delivery.stream)).inc()
        self._unsettled[key] = delivery
        task = asyncio.create_task(self._run_one(delivery), name=f"item {delivery.entry_id}")
        self._active[task] = delivery
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        self._slot_freed.set()

    async def _run_one(self, delivery: Delivery) -> None:
        key = (delivery.stream, delivery.entry_id)
        if self.metrics is not None:
            self.metrics.inflight.inc()
        try:
            if delivery.deliveries > self._config.max_deliveries:
                await self._handler.exhausted(self.consumer, delivery)
            else:
                await self._handler.handle(self.consumer, delivery)
        except asyncio.CancelledError:
            raise  # stays unsettled: stop() releases it
        except Exception:
            # Left pending and no longer touched: the reaper hands it out again later.
            log.exception("delivery handler failed for %s", delivery.entry_id)
            self._unsettled.pop(key, None)
        else:
            self._unsettled.pop(key, None)
        finally:
            if self.metrics is not None:
                self.metrics.inflight.dec()

    # -- loops -------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        backoff = Backoff(max_s=self._config.reconnect_backoff_max_s)
        while not self._stopping:
            free = self._free()
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                batch = await self._read(free)
            except BackendUnavailable as exc:
                self._backend_error(exc)
                await backoff.sleep()
                continue
            backoff.reset()
            for d in batch:
                self._dispatch(d)

    async def _read(self, free: int) -> list[Delivery]:
        # Higher lanes first without blocking; block on all lanes only when all are empty.
        batch: list[Delivery] = []
        for stream in self._streams:
            if free - len(batch) <= 0:
                break
            batch += await self._backend.read(self.consumer, [stream], free - len(batch), 0)
        if not batch:
            batch = await self._backend.read(
                self.consumer, self._streams, 1, self._config.read_block_s
            )
        return batch

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_interval_s)
            if not self._unsettled:
                continue
            try:
                await self._backend.touch(self.consumer, self.inflight)
            except BackendUnavailable as exc:
                self._backend_error(exc)

    async def _reaper_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._config.reaper_interval_s)
            try:
                await self.reap_once()
            except BackendUnavailable as exc:
                self._backend_error(exc)

    async def reap_once(self) -> int:
        """Claim entries idle beyond the visibility timeout, up to the free slots."""
        claimed = 0
        for stream in self._streams:
            free = self._free()
            if free <= 0 or self._stopping:
                break
            result = await self._backend.reclaim(
                self.consumer,
                stream,
                self._config.visibility_timeout_s,
                free,
                self._cursors[stream],
            )
            self._cursors[stream] = result.cursor
            for d in result.deliveries:
                self._dispatch(d)
            claimed += len(result.deliveries)
        return claimed

    def _backend_error(self, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.backend_errors.inc()
        log.warning("queue store unavailable: %s", exc)
