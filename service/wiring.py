"""The composition root: settings -> registry -> batcher -> pipeline -> job service.

The one module that turns plain ``Settings`` into running parts. The gateway's lifespan
(``service.api.app``), ``avserve worker`` and ``avserve classify`` all start through here, so
the layers below never reach up to one another: the queue does not import the gateway, and
settings build nothing.

``start_services`` loads the models (off the event loop), gives each its pipeline over one
shared decode pool, warms them up and starts the job service; ``Services.close`` undoes it in
reverse. Tests may pass a ``classifier`` stand-in, which then serves every loaded model in
place of the pipeline (no decode pool is started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.package import ModelPackage
from service import tracing
from service.errors import AvserveError
from service.executor import model_thread
from service.media import DecodePool, fetch_url
from service.metrics import Metrics
from service.notices import with_fetch_timing
from service.pipeline import Pipeline
from service.queue import JobProcessor, JobService, build_job_service
from service.registry import Classifier, ModelRegistry, PipelineFactory, load_registry
from service.schemas import ClassifyOptions, ClassifyResult, InferFn, Priority
from service.settings import Settings
from service.warmup import warm_up

log = logging.getLogger(__name__)


# -- registry, pipelines ---------------------------------------------------------------------------
def pipeline_factory(
    settings: Settings, decoder: DecodePool, metrics: Metrics | None
) -> PipelineFactory:
    """One ``Pipeline`` per model, all over the one shared decode pool."""
    config = settings.pipeline_config()

    def make(package: ModelPackage, infer: InferFn) -> Classifier:
        return Pipeline(package, decoder, infer, config, observer=metrics)

    return make


def build_registry(
    settings: Settings,
    pipeline: PipelineFactory,
    metrics: Metrics | None = None,
    *,
    default_model: str | None = None,
) -> ModelRegistry:
    """Load the configured model packages (blocking: run it in a thread)."""
    return load_registry(
        settings.resolved_model_dir(),
        pipeline=pipeline,
        runtime=settings.runtime,
        device=settings.device,
        fp16=settings.fp16,
        threads=settings.torch_threads,
        batcher=settings.batcher_config(),
        cache_dir=settings.export_cache_dir,
        default_model=default_model or settings.default_model,
        warmup_batch_size=settings.warmup_batch_size,
        metrics=metrics,
    )


# -- the running service ---------------------------------------------------------------------------
@dataclass
class Services:
    """What the gateway and the worker serve with: models (each with its pipeline), the decode
    pool they share and the job service."""

    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    decoder: DecodePool | None = None  # None when a stand-in classifier replaces the pipelines
    jobs: JobService | None = None

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult:
        """Classify with the model ``options.model`` names (the default one when it names none)."""
        model = self.registry.get(options.model)
        return await model.pipeline.classify(path, options, priority=priority, deadline=deadline)

    async def fetch(
        self, url: str, dest_dir: Path, on_bytes: Callable[[int], None] | None = None
    ) -> Path:
        """Download ``url`` through the SSRF-guarded fetcher (stage ``fetch`` in metrics);
        ``on_bytes`` counts each chunk against a disk budget before it is written."""
        t0 = time.perf_counter()
        try:
            # The span names the host only: a presigned URL's query string is a credential.
            with tracing.span("fetch", {"server.address": tracing.url_host(url)}):
                fetched = await fetch_url(
                    url, dest_dir, self.settings.fetch_policy(), on_bytes=on_bytes
                )
        except AvserveError as exc:
            self.metrics.observe_stage_error("fetch", exc.code)
            raise
        finally:
            self.metrics.observe_stage("fetch", time.perf_counter() - t0)
        return fetched.path

    async def classify_url(self, url: str, options: ClassifyOptions) -> dict[str, Any]:
        """One batch-job item (the ``JobProcessor`` of the queue): fetch, classify, JSON."""
        with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir, prefix="avserve-") as tmp:
            t0 = time.perf_counter()
            path = await self.fetch(url, Path(tmp))
            fetch_s = time.perf_counter() - t0
            result = await self.classify(path, options, priority=Priority.BATCH)
        return with_fetch_timing(result, fetch_s).model_dump(mode="json")

    async def close(self, grace_s: float) -> None:
        """Stop jobs first (they feed the batchers), then the models, then the decode pool."""
        if self.jobs is not None:
            try:
                await self.jobs.stop(grace_s)
            except Exception:
                log.exception("error while stopping the job service")
        await self.registry.close(grace_s)
        if self.decoder is not None:
            try:
                await self.decoder.close()
            except Exception:
                log.exception("error while closing the decode pool")


async def start_services(
    settings: Settings,
    metrics: Metrics,
    *,
    classifier: Classifier | None = None,
    jobs: bool = True,
    default_model: str | None = None,
    warmup: bool = True,
    decoder: DecodePool | None = None,
) -> Services:
    """Load models (off the loop), warm them up, start their decode pool and the job service.

    ``decoder``: a pool the caller made (and may have started) already; it is closed with
    the services, or here when they fail to start.
    """
    if classifier is None:
        decoder = decoder or DecodePool(settings.media.decode_workers, settings.media_policy())
        pipeline = pipeline_factory(settings, decoder, metrics)
    else:
        stand_in = classifier

        def pipeline(package: ModelPackage, infer: InferFn) -> Classifier:
            return stand_in

    # The decode workers (fresh interpreters importing PyAV) start while the models load; the
    # models load on the model thread, where all of this process's torch work runs.
    spawning = asyncio.create_task(decoder.start()) if decoder is not None else None
    try:
        registry = await model_thread().run(
            build_registry, settings, pipeline, metrics, default_model=default_model
        )
    except BaseException:
        if decoder is not None and spawning is not None:
            with contextlib.suppress(Exception):
                await spawning
            await decoder.close()
        raise
    services = Services(settings, metrics, registry, decoder)
    try:
        await registry.start()
        if decoder is not None and spawning is not None:
            await spawning
            if warmup:  # the whole path once, so the first request is as fast as the next
                await warm_up(registry.models.values(), decoder, settings.tmp_dir)
        if jobs:
            services.jobs = build_job_service(
                settings.queue_config(), services.classify_url, registry=metrics.registry
            )
            await services.jobs.start()
    except BaseException:
        if spawning is not None:  # a pool still starting would leave its workers behind
            with contextlib.suppress(Exception):
                await spawning
        await services.close(0)
        raise
    return services


@asynccontextmanager
async def job_processor() -> AsyncIterator[JobProcessor]:
    """``avserve worker``'s default processor: the classify pipeline built from the settings.

    The same ``Services.classify_url`` the gateway's embedded worker runs, without HTTP and
    without a job service of its own (the worker process is one).
    """
    settings = Settings()
    services = await start_services(settings, Metrics(), jobs=False)
    try:
        yield services.classify_url
    finally:
        await services.close(settings.shutdown_grace_s)
