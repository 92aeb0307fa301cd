"""Open Inference Protocol health paths and the Prometheus scrape endpoint (always open)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.api import paths
from service.api.deps import LifecycleDep, MetricsDep, RegistryDep
from service.api.errors import error_responses
from service.api.lifecycle import Lifecycle
from service.api.schemas import LiveStatus, ModelReadyStatus, ReadyStatus
from service.errors import AvserveError

router = APIRouter(tags=["health"])

_READY_ERRORS = error_responses((404, 503))


def _check_ready(lifecycle: Lifecycle) -> None:
    if lifecycle.draining:
        raise AvserveError("server is shutting down", code="shutting_down")
    if not lifecycle.ready:
        raise AvserveError("models are still loading", code="not_ready")


@router.get(
    f"{paths.HEALTH}/live", response_model=LiveStatus, summary="Liveness (process answers)."
)
async def live() -> LiveStatus:
    return LiveStatus(live=True)


@router.get(
    f"{paths.HEALTH}/ready",
    response_model=ReadyStatus,
    responses=_READY_ERRORS,
    summary="Readiness: models loaded and warmed up, not draining (else 503).",
)
async def ready(lifecycle: LifecycleDep) -> ReadyStatus:
    _check_ready(lifecycle)
    return ReadyStatus(ready=True)


@router.get(
    paths.MODEL_READY,
    response_model=ModelReadyStatus,
    responses=_READY_ERRORS,
    summary="Readiness of one model (404 when not loaded).",
)
async def model_ready(
    name: str, registry: RegistryDep, lifecycle: LifecycleDep
) -> ModelReadyStatus:
    model = registry.get(name)
    _check_ready(lifecycle)
    if not model.ready:
        raise AvserveError(f"model {name!r} is not ready", code="not_ready")
    return ModelReadyStatus(name=name, ready=True)


@router.get(
    paths.METRICS,
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics.",
)
async def metrics(m: MetricsDep) -> Response:
    return Response(m.render(), media_type=m.content_type)
