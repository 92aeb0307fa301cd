"""Model registry: the packages of a model directory, each with one runtime and one batcher.

A model directory is either one package (it holds ``config.json``) or a directory whose
sub-directories are packages. Every model runs on the one configured device; all batchers of a
device share that device's single thread, so at most one batch is in flight per device.

Lifecycle: ``load_registry(...)`` (blocking: reads weights, exports, builds sessions; run it in
a thread) -> ``await registry.start()`` (batchers up, one warm-up batch each) -> serve ->
``await registry.close(grace_s)``.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from service.batcher import BatcherConfig, DynamicBatcher
from service.errors import AvserveError
from service.metrics import Metrics
from service.runtimes import Runtime, RuntimeKind, build_runtime, resolve_device

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    package: Any  # models.ModelPackage
    runtime: Runtime
    batcher: DynamicBatcher
    ready: bool = False

    @property
    def name(self) -> str:
        return str(self.package.name)

    @property
    def version(self) -> str:
        return str(self.package.version)


@dataclass
class ModelRegistry:
    models: dict[str, LoadedModel]
    default_name: str
    warmup_batch_size: int = 1
    _executors: list[ThreadPoolExecutor] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return bool(self.models) and all(m.ready for m in self.models.values())

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None = None) -> LoadedModel:
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
            m.ready = True
            log.info(
                "model %s %s ready (%s on %s)", m.name, m.version, m.runtime.name, m.runtime.device
            )

    async def close(self, grace_s: float | None = None) -> None:
        for m in self.models.values():
            m.ready = False
        await asyncio.gather(*(m.batcher.close(grace_s) for m in self.models.values()))
        for ex in self._executors:
            ex.shutdown(wait=False, cancel_futures=True)


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
    runtime: RuntimeKind = "eager",
    device: str = "auto",
    fp16: bool = True,
    threads: int = 0,
    batcher: BatcherConfig | None = None,
    cache_dir: Path | None = None,
    default_model: str | None = None,
    warmup_batch_size: int = 1,
    metrics: Metrics | None = None,
) -> ModelRegistry:
    """Load every package of ``model_dir`` and build its runtime and (not yet started) batcher."""
    from models.package import load_package

    dirs = discover_packages(model_dir)
    if not dirs:
        raise AvserveError(
            f"no model package found in {model_dir} (a package holds config.json and "
            "weights.safetensors); build the default one with `make model` or set AVSERVE_MODEL_DIR",
            code="not_ready",
        )
    dev = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    executor = ThreadPoolExecutor(1, thread_name_prefix=f"device-{dev}")
    loaded: dict[str, LoadedModel] = {}
    for d in dirs:
        try:
            package = load_package(d)
        except ValueError as e:  # models.PackageError
            raise AvserveError(f"cannot load model package {d}: {e}", code="not_ready") from e
        if package.name in loaded:
            raise AvserveError(f"two packages are named {package.name!r}", code="not_ready")
        rt = build_runtime(package, runtime, dev, fp16=fp16, threads=threads, cache_dir=cache_dir)
        b = DynamicBatcher(rt, batcher, model_name=package.name, metrics=metrics, executor=executor)
        loaded[package.name] = LoadedModel(package=package, runtime=rt, batcher=b)
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
        _executors=[executor],
    )
