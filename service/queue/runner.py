"""Running a worker process: processor loading, signals, metrics endpoint (``avserve worker``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from service.queue.backend import BackendUnavailable
from service.queue.callbacks import CallbackSender
from service.queue.config import QueueConfig
from service.queue.consumer import Backoff
from service.queue.items import JobProcessor
from service.queue.metrics import StatsCache, WorkerMetrics
from service.queue.redis_backend import RedisBackend
from service.queue.worker import Worker

log = logging.getLogger(__name__)

# A factory returns the processor, or an async context manager yielding it (to own resources
# such as a decode pool), or an awaitable of either.
ProcessorFactory = Callable[[], Any]


def load_factory(spec: str) -> ProcessorFactory:
    """``package.module:callable`` -> the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"processor must look like 'package.module:callable', got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise ValueError(f"{spec!r} is not a callable")
    return factory


@asynccontextmanager
async def open_processor(factory: ProcessorFactory) -> AsyncIterator[JobProcessor]:
    made = factory()
    if inspect.isawaitable(made):
        made = await made
    if isinstance(made, AbstractAsyncContextManager):
        async with made as processor:
            yield processor
    else:
        yield made


@asynccontextmanager
async def pipeline_processor() -> AsyncIterator[JobProcessor]:
    """WIRING POINT (pipeline): the real processor, built from the service settings.

    Fetch through the SSRF guard, then ``Pipeline.classify`` with ``Priority.BATCH``: the
    gateway's ``Services.classify_url`` already does exactly this, so the worker builds the
    same services (models, decode pool) without the HTTP layer.
    """
    try:
        importlib.import_module("service.pipeline")
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "service.pipeline is not available yet: pass --processor module:factory"
        ) from exc
    from service.api.services import build_services
    from service.metrics import Metrics
    from service.schemas import Priority
    from service.settings import Settings

    settings = Settings()
    services = await build_services(settings, Metrics())

    async def processor(url: str, options: Any) -> dict[str, Any]:
        result = await services.classify_url(url, options, priority=Priority.BATCH)
        return result.model_dump(mode="json")

    try:
        yield processor
    finally:
        await services.close(settings.shutdown_grace_s)


async def run_worker(
    config: QueueConfig,
    factory: ProcessorFactory,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain within ``config.shutdown_grace_s``."""
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
        await stats.stop()
        await sender.aclose()
        with contextlib.suppress(Exception):
            await backend.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
