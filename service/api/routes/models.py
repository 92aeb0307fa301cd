"""``GET /v1/models`` and ``GET /v1/models/{name}``: what is loaded and how it runs."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import paths
from service.api.deps import RegistryDep, ServicesDep
from service.api.errors import error_responses
from service.api.schemas import HeadInfo, InputInfo, JobsInfo, ModelInfo, ModelList
from service.registry import ModelRegistry, ServedModel

router = APIRouter(tags=["models"])

_ERRORS = error_responses((401, 404))


def describe(model: ServedModel, registry: ModelRegistry) -> ModelInfo:
    pkg = model.package
    return ModelInfo(
        name=model.name,
        version=model.version,
        default=model.name == registry.default_name,
        ready=model.ready,
        runtime=model.runtime.name,
        device=model.runtime.device,
        max_batch_size=model.batcher.config.max_batch_size,
        heads=[
            HeadInfo(
                name=h.name,
                num_classes=h.num_classes,
                multi_label=h.multi_label,
                labels=list(pkg.labels[h.name]),
                temperature=pkg.config.head_calibration(h.name).temperature,
                min_confidence=pkg.config.head_calibration(h.name).min_confidence,
                background=pkg.config.head_calibration(h.name).background,
                calibration_metrics=pkg.config.head_calibration(h.name).metrics,
            )
            for h in pkg.heads
        ],
        inputs=[
            InputInfo(name=t.name, shape=list(t.shape), dtype=t.dtype)
            for t in model.runtime.spec.inputs
        ],
        crop_size=pkg.config.preprocessing.crop_size,
        test_crop_size=pkg.config.preprocessing.test_crop_size,
        clip_seconds=round(pkg.config.preprocessing.clip_seconds, 4),
        glance=pkg.config.glance is not None,
    )


@router.get(paths.MODELS, response_model=ModelList, responses=_ERRORS, summary="Loaded models.")
async def list_models(services: ServicesDep) -> ModelList:
    registry = services.registry
    jobs = JobsInfo(**services.jobs.info()) if services.jobs is not None else None
    return ModelList(models=[describe(m, registry) for m in registry.models.values()], jobs=jobs)


@router.get(
    f"{paths.MODELS}/{{name}}",
    response_model=ModelInfo,
    responses=_ERRORS,
    summary="One loaded model.",
)
async def get_model(name: str, registry: RegistryDep) -> ModelInfo:
    return describe(registry.get(name), registry)
