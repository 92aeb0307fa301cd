"""Running a worker process: processor loading, signals, liveness heartbeat, metrics endpoint
(``avserve worker``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from service.queue.backend import BackendUnavailable
from service.queue.callbacks import CallbackSender
from service.queue.config import QueueConfig
from service.queue.consumer import Backoff
from service.queue.items import JobProcessor
from service.queue.liveness import heartbeat
from service.queue.metrics import StatsCache, WorkerMetrics
from service.queue.redis_backend import RedisBackend
from service.queue.worker import Worker

log = logging.getLogger(__name__)

# A factory returns the processor, or an async context manager yielding it (to own resources
# such as a decode pool), or an awaitable of either.
_Made = JobProcessor | AbstractAsyncContextManager[JobProcessor]
ProcessorFactory = Callable[[], _Made | Awaitable[_Made]]


def load_factory(spec: str) -> ProcessorFactory:
    """``package.module:callable`` -> the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"processor must look like 'package.module:callable', got {spec!r}")
    factory: ProcessorFactory | None = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise ValueError(f"{spec!r} is not a callable")
    return factory


@asynccontextmanager
async def open_processor(factory: ProcessorFactory) -> AsyncIterator[JobProcessor]:
    made_or_awaitable = factory()
    made = await made_or_awaitable if inspect.isawaitable(made_or_awaitable) else made_or_awaitable
    if isinstance(made, AbstractAsyncContextManager):
        async with made as processor:
            yield processor
    else:
        yield made


async def run_worker(
    config: QueueConfig,
    factory: ProcessorFactory,
    *,
    stop: asyncio.Event | None = None,
    health_file: Path | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain within ``config.shutdown_grace_s``.

    From the start (waiting for Redis and loading models included) the event loop beats into
    ``health_file`` every ``config.heartbeat_interval_s``: what ``avserve worker --check`` reads.
    """
    if config.redis_url is None:
        raise ValueError("`avserve worker` needs a Redis URL (REDIS_URL or --redis-url)")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, config)
    backend = RedisBackend(config)
    stats = StatsCache(backend, config.metrics_interval_s)
    registry.register(stats.collector(config))
    if config.metrics_port is not None:
        start_http_server(config.metrics_port, registry=registry)
    sender = CallbackSender(config)
    beating = (
        asyncio.create_task(heartbeat(health_file, config.heartbeat_interval_s))
        if health_file is not None
        else None
    )
    try:
        # Survive a Redis that is not up yet (pod start order, restarts).
        backoff = Backoff(max_s=config.reconnect_backoff_max_s)
        while not stop.is_set():
            try:
                await backend.start()
                break
            except BackendUnavailable as exc:
                log.warning("waiting for redis: %s", exc)
                await backoff.sleep()
        async with open_processor(factory) as processor:
            worker = Worker(config, backend, processor, sender=sender, metrics=metrics)
            await worker.start()
            stats.start()
            await stop.wait()
            log.info("stopping: finishing in-flight items (grace %.1fs)", config.shutdown_grace_s)
            await worker.stop(config.shutdown_grace_s)
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        await stats.stop()
        await sender.aclose()
        with contextlib.suppress(Exception):
            await backend.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
