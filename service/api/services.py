"""What the gateway serves with: models (registry), the classify pipeline(s), decode pool, jobs.

``build_services`` is called by the app's lifespan; ``Services.close`` undoes it in reverse.
Tests may pass their own ``classifier`` (anything with the ``Classifier`` signature, in place
of the pipelines) and/or ``registry``; everything not passed is built from the settings.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from service.errors import AvserveError
from service.media import DecodePool, fetch_url
from service.metrics import Metrics
from service.registry import ModelRegistry
from service.schemas import ClassifyOptions, ClassifyResult, Priority
from service.settings import Settings

log = logging.getLogger(__name__)


class Classifier(Protocol):
    """``service.pipeline.Pipeline.classify``'s signature (deadline: absolute monotonic time)."""

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult: ...


class PipelineRouter:
    """One pipeline per model package; a request goes to the one its ``model`` option names."""

    def __init__(self, pipelines: Mapping[str, Classifier], default: str) -> None:
        self.pipelines = dict(pipelines)
        self.default = default

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult:
        name = options.model or self.default
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            raise AvserveError(
                f"unknown model {name!r}; loaded: {', '.join(self.pipelines)}",
                code="model_not_found",
            )
        return await pipeline.classify(path, options, priority=priority, deadline=deadline)


class UnavailableClassifier:
    """Stands in while ``service.pipeline`` does not exist yet: classify answers 503."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult:
        raise AvserveError(self.reason, code="not_ready")


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    classifier: Classifier
    decoder: Any = None  # service.media.DecodePool
    jobs: Any = None  # service.queue JobService
    _closers: list[Any] = field(default_factory=list)

    async def fetch(self, url: str, dest_dir: Path) -> Path:
        """Download ``url`` through the SSRF-guarded fetcher (stage ``fetch`` in metrics)."""
        t0 = time.perf_counter()
        try:
            fetched = await fetch_url(url, dest_dir, self.settings.fetch_policy())
        finally:
            self.metrics.observe_stage("fetch", time.perf_counter() - t0)
        return fetched.path

    async def classify_url(
        self, url: str, options: ClassifyOptions, *, priority: Priority = Priority.BATCH
    ) -> ClassifyResult:
        """Fetch and classify one URL: the work of one batch-job item."""
        with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir, prefix="avserve-") as tmp:
            path = await self.fetch(url, Path(tmp))
            return await self.classifier.classify(path, options, priority=priority)

    async def close(self, grace_s: float) -> None:
        """Stop jobs first (they feed the batcher), then models, then the decode pool."""
        if self.jobs is not None:
            try:
                await self.jobs.stop(grace_s)
            except Exception:
                log.exception("error while stopping the job service")
        await self.registry.close(grace_s)
        for closer in reversed(self._closers):
            try:
                result = closer()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("error while closing")


async def build_services(
    settings: Settings,
    metrics: Metrics,
    *,
    classifier: Classifier | None = None,
    registry: ModelRegistry | None = None,
) -> Services:
    """Load models (off the loop), warm them up, build pipelines and start the job service."""
    if registry is None:
        registry = await asyncio.to_thread(settings.load_registry, metrics)
    services = Services(settings, metrics, registry, classifier or UnavailableClassifier(""))
    try:
        await registry.start()
        if classifier is None:
            services.classifier = await _build_pipelines(services, registry)
        services.jobs = await _start_jobs(services)
    except BaseException:
        await services.close(0)
        raise
    return services


async def _build_pipelines(services: Services, registry: ModelRegistry) -> Classifier:
    """One ``service.pipeline.Pipeline`` per loaded model, sharing one decode pool."""
    try:
        from service.pipeline import Pipeline
    except ImportError as e:
        reason = f"classify pipeline not available ({e})"
        log.warning(reason)
        return UnavailableClassifier(reason)
    settings = services.settings
    decoder = DecodePool(settings.media.decode_workers, settings.media_policy())
    services.decoder = decoder
    await decoder.start()
    services._closers.append(decoder.close)
    config = settings.pipeline_config()
    pipelines: dict[str, Classifier] = {
        name: Pipeline(
            model.package, decoder, model.batcher.infer, config, observer=services.metrics
        )
        for name, model in registry.models.items()
    }
    return PipelineRouter(pipelines, registry.default_name)


async def _start_jobs(services: Services) -> Any:
    """WIRING POINT (queue): the job service, fed by ``Services.classify_url``."""
    try:
        from service.queue import build_job_service
    except ImportError as e:
        log.warning("job queue not available (%s)", e)
        return None

    async def processor(url: str, options: ClassifyOptions) -> dict[str, Any]:
        result = await services.classify_url(url, options, priority=Priority.BATCH)
        return result.model_dump(mode="json")

    jobs = build_job_service(
        services.settings.queue_config(), processor, registry=services.metrics.registry
    )
    await jobs.start()
    return jobs
