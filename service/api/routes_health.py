"""Open Inference Protocol health paths and the Prometheus scrape endpoint (always open)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.api.errors import errors_for
from service.api.lifecycle import Lifecycle
from service.api.responses import LiveStatus, ModelReadyStatus, ReadyStatus
from service.errors import AvserveError
from service.metrics import Metrics
from service.registry import ModelRegistry

router = APIRouter(tags=["health"])

_READY_ERRORS = errors_for(404, 503)


def _check_ready(request: Request) -> None:
    lifecycle: Lifecycle = request.app.state.lifecycle
    if lifecycle.draining:
        raise AvserveError("server is shutting down", code="shutting_down")
    if not lifecycle.ready:
        raise AvserveError("models are still loading", code="not_ready")


@router.get("/v2/health/live", response_model=LiveStatus, summary="Liveness (process answers).")
async def live() -> LiveStatus:
    return LiveStatus(live=True)


@router.get(
    "/v2/health/ready",
    response_model=ReadyStatus,
    responses=_READY_ERRORS,
    summary="Readiness: models loaded and warmed up, not draining (else 503).",
)
async def ready(request: Request) -> ReadyStatus:
    _check_ready(request)
    return ReadyStatus(ready=True)


@router.get(
    "/v2/models/{name}/ready",
    response_model=ModelReadyStatus,
    responses=_READY_ERRORS,
    summary="Readiness of one model (404 when not loaded).",
)
async def model_ready(name: str, request: Request) -> ModelReadyStatus:
    registry: ModelRegistry = request.app.state.services.registry
    model = registry.get(name)
    _check_ready(request)
    if not model.ready:
        raise AvserveError(f"model {name!r} is not ready", code="not_ready")
    return ModelReadyStatus(name=name, ready=True)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics.",
)
async def metrics(request: Request) -> Response:
    m: Metrics = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
