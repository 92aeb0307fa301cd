"""A queue worker: item consumer + callback consumer + heartbeat and housekeeping.

The same class runs inside ``avserve worker`` processes (Redis) and inside the gateway as
the embedded worker of the in-process queue. Lifecycle: ``await start()``, then
``await stop(grace_s)`` (stop reading, finish or release in-flight items, say goodbye).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from service.queue.backend import BackendUnavailable, JobBackend
from service.queue.callbacks import CallbackHandler, CallbackSender
from service.queue.config import QueueConfig
from service.queue.consumer import StreamConsumer
from service.queue.items import ItemHandler, JobProcessor
from service.queue.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def default_consumer_name() -> str:
    """Unique per process: a restarted worker never inherits a dead one's identity."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Processes items of both lanes (high first) and delivers completion callbacks."""

    def __init__(
        self,
        config: QueueConfig,
        backend: JobBackend,
        processor: JobProcessor,
        *,
        sender: CallbackSender,
        metrics: WorkerMetrics | None = None,
        consumer: str | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer or config.consumer_name or default_consumer_name()
        self._backend = backend
        self._item_handler = ItemHandler(backend, config, processor, metrics=metrics)
        self._callback_handler = CallbackHandler(backend, config, sender, metrics=metrics)
        self._items = StreamConsumer(
            backend,
            config,
            self._item_handler,
            consumer=self.consumer,
            streams=config.item_streams,
            concurrency=config.concurrency,
            metrics=metrics,
        )
        self._callbacks = StreamConsumer(
            backend,
            config,
            self._callback_handler,
            consumer=self.consumer,
            streams=(config.callback_stream,),
            concurrency=config.callback_concurrency,
            metrics=metrics,
        )
        self._loops: list[asyncio.Task[None]] = []
        self._started = False

    def use_metrics(self, metrics: WorkerMetrics) -> None:
        """Attach metrics after construction (the gateway registers them on its registry)."""
        for part in (self._item_handler, self._callback_handler, self._items, self._callbacks):
            part.metrics = metrics

    @property
    def items(self) -> StreamConsumer:
        return self._items

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        with contextlib.suppress(BackendUnavailable):
            await self._backend.heartbeat(self.consumer, self._heartbeat_ttl)
        self._items.start()
        self._callbacks.start()
        self._loops = [
            asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat {self.consumer}"),
            asyncio.create_task(self._maintenance_loop(), name=f"maintenance {self.consumer}"),
        ]
        log.info("queue worker %s started (concurrency %d)", self.consumer, self.config.concurrency)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop reading, let in-flight items finish within ``grace_s``, release the rest."""
        if not self._started:
            return
        self._started = False
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        await self._items.stop(grace)
        await self._callbacks.stop(max(0.0, deadline - time.monotonic()))
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        try:
            await asyncio.wait_for(self._backend.forget_consumer(self.consumer), timeout=2.0)
        except (BackendUnavailable, TimeoutError) as exc:
            log.warning("could not deregister %s: %s", self.consumer, exc)
        log.info("queue worker %s stopped", self.consumer)

    @property
    def _heartbeat_ttl(self) -> float:
        return 3 * self.config.heartbeat_interval_s

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_s)
            try:
                await self._backend.heartbeat(self.consumer, self._heartbeat_ttl)
            except BackendUnavailable as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _maintenance_loop(self) -> None:
        # Trimming is idempotent, so every worker may do it; spread them out a little.
        while True:
            await asyncio.sleep(self.config.reaper_interval_s * 2)
            try:
                await self._backend.maintain(time.time())
            except BackendUnavailable as exc:
                log.warning("queue maintenance failed: %s", exc)
