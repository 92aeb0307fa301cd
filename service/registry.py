"""Model registry: the served models of a model directory, one ``ServedModel`` per package.

A ``ServedModel`` is everything one model needs to answer a request (like LitServe's
``LitAPI``): its package, runtime, batcher and the pipeline that runs on them. Every caller
(routes, the classify CLI, queue workers, health checks) reaches a model through one lookup,
``ModelRegistry.get``, which is also the one place an unknown name becomes ``model_not_found``.

A model directory is either one package (it holds ``config.json``) or a directory whose
sub-directories are packages. Every model runs on the one configured device; all batchers
share the process's model thread (``service.executor``), so at most one batch is in flight.

Lifecycle: ``load_registry(...)`` (blocking: reads weights, exports, builds sessions; run it on
the model thread) -> ``await registry.start()`` (batchers up, one warm-up batch each) -> serve ->
``await registry.close(grace_s)``. ``service.wiring`` drives it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from models.package import ModelPackage, load_package
from service.batcher import BatcherConfig, DynamicBatcher
from service.errors import AvserveError
from service.executor import model_thread, set_torch_threads
from service.metrics import Metrics
from service.runtimes import Runtime, RuntimeKind, build_runtime, resolve_device
from service.schemas import ClassifyOptions, ClassifyResult, InferFn, Priority

log = logging.getLogger(__name__)


class Classifier(Protocol):
    """``service.pipeline.Pipeline.classify``'s signature (deadline: absolute monotonic time).

    Tests about the HTTP layer or the queue serve a model with a stand-in of this shape.
    """

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult: ...


# Builds a model's pipeline from its package and its batcher's entry point.
PipelineFactory = Callable[[ModelPackage, InferFn], Classifier]


@dataclass
class ServedModel:
    package: ModelPackage
    runtime: Runtime
    batcher: DynamicBatcher
    pipeline: Classifier
    ready: bool = False

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def version(self) -> str:
        return self.package.version


@dataclass
class ModelRegistry:
    models: dict[str, ServedModel]
    default_name: str
    warmup_batch_size: int  # clips in the warm-up batch (AVSERVE_WARMUP_BATCH_SIZE)

    @property
    def ready(self) -> bool:
        return bool(self.models) and all(m.ready for m in self.models.values())

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None = None) -> ServedModel:
        """The model called ``name`` (the default one for None), else ``model_not_found``."""
        key = self.default_name if name is None else name
        try:
            return self.models[key]
        except KeyError:
            raise AvserveError(
                f"unknown model {key!r}; loaded: {', '.join(self.models)}", code="model_not_found"
            ) from None

    async def start(self) -> None:
        """Start every batcher and run its warm-up batch; a model is ready only after that."""
        for m in self.models.values():
            await m.batcher.start()
            await m.batcher.warmup(self.warmup_batch_size)
            if m.batcher.config.autotune:
                timings = await m.batcher.tune()
                log.info(
                    "model %s: batches capped at %d (ms per clip by batch size: %s)",
                    m.name, m.batcher.config.max_batch_size,
                    ", ".join(f"{t.size}: {1000 * t.seconds_per_clip:.1f}" for t in timings),
                )  # fmt: skip
            m.ready = True
            log.info(
                "model %s %s ready (%s on %s)", m.name, m.version, m.runtime.name, m.runtime.device
            )

    async def close(self, grace_s: float | None = None) -> None:
        for m in self.models.values():
            m.ready = False
        await asyncio.gather(*(m.batcher.close(grace_s) for m in self.models.values()))


def discover_packages(model_dir: Path) -> list[Path]:
    """Package directories under ``model_dir`` (itself, or its sub-directories, sorted)."""
    if (model_dir / "config.json").is_file():
        return [model_dir]
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.iterdir() if (p / "config.json").is_file())


def load_registry(
    model_dir: Path,
    *,
    pipeline: PipelineFactory,
    runtime: RuntimeKind,
    device: str,
    fp16: bool,
    threads: int,
    batcher: BatcherConfig,
    cache_dir: Path | None,
    default_model: str | None,
    warmup_batch_size: int,
    metrics: Metrics | None = None,
) -> ModelRegistry:
    """Load every package of ``model_dir``: its runtime, its (not yet started) batcher and its
    pipeline. The defaults of these settings live in ``service.settings`` alone."""
    dirs = discover_packages(model_dir)
    if not dirs:
        raise AvserveError(
            f"no model package found in {model_dir} (a package holds config.json and "
            "weights.safetensors); build the default one with `make model` or set AVSERVE_MODEL_DIR",
            code="not_ready",
        )
    dev = resolve_device(device)
    set_torch_threads(threads)
    executor = model_thread()
    loaded: dict[str, ServedModel] = {}

    def load_one(d: Path) -> ServedModel:
        # Weight init, export (it runs a forward) and the glance net's build are torch work:
        # on the model thread like inference, so no other thread starts an OpenMP team.
        try:
            package = load_package(d)
        except ValueError as e:  # models.PackageError, or a malformed file
            raise AvserveError(f"cannot load model package {d}: {e}", code="not_ready") from e
        if package.name in loaded:
            raise AvserveError(f"two packages are named {package.name!r}", code="not_ready")
        rt = build_runtime(package, runtime, dev, fp16=fp16, threads=threads, cache_dir=cache_dir)
        b = DynamicBatcher(rt, batcher, model_name=package.name, metrics=metrics, executor=executor)
        return ServedModel(package, rt, b, pipeline(package, b.infer))

    for d in dirs:
        served = executor.call(load_one, d)
        package, rt = served.package, served.runtime
        loaded[package.name] = served
        if metrics is not None:
            metrics.set_model_info(package.name, package.version, rt.name, rt.device)
    default = default_model or next(iter(loaded))
    if default not in loaded:
        raise AvserveError(
            f"default model {default!r} not among {sorted(loaded)}", code="not_ready"
        )
    return ModelRegistry(
        models=loaded,
        default_name=default,
        warmup_batch_size=warmup_batch_size,
    )
