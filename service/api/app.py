"""The FastAPI app factory: ``create_app(settings) -> FastAPI``.

Lifespan: load and warm up the models, build the pipelines and the job service, mark ready; on
shutdown: not ready, wait for in-flight requests (bounded by the grace period), stop jobs,
drain the batchers, close the decode pool.

``app.state`` holds: ``settings``, ``metrics`` (this app's own Prometheus registry),
``lifecycle`` (ready/draining/in-flight), ``services`` (registry, classifier, jobs; set once
the lifespan started) and ``jobs`` (the job service or None).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import routes_classify, routes_health, routes_models
from service.api.errors import install_exception_handlers
from service.api.lifecycle import Lifecycle
from service.api.middleware import (
    AdmissionMiddleware,
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
)
from service.api.services import Classifier, build_services
from service.metrics import Metrics
from service.registry import ModelRegistry
from service.settings import Settings

log = logging.getLogger(__name__)

API_VERSION = "1"


def _jobs_router() -> object | None:
    try:  # written by the queue engineer; absent until it lands
        routes_jobs = importlib.import_module("service.api.routes_jobs")
    except ModuleNotFoundError as e:
        if e.name != "service.api.routes_jobs":
            raise
        return None
    return getattr(routes_jobs, "router", None)


def create_app(
    settings: Settings | None = None,
    *,
    classifier: Classifier | None = None,
    registry: ModelRegistry | None = None,
) -> FastAPI:
    """Build the gateway. ``classifier``/``registry`` replace the ones built from settings."""
    settings = settings or Settings()
    metrics = Metrics()
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings, metrics, classifier=classifier, registry=registry)
        app.state.services = services
        app.state.jobs = services.jobs
        lifecycle.mark_started()
        log.info("avserve ready", extra={"models": services.registry.names()})
        try:
            yield
        finally:
            lifecycle.begin_drain()
            if not await lifecycle.wait_idle(settings.shutdown_grace_s):
                log.warning("grace period over with %d requests in flight", lifecycle.active)
            await services.close(settings.shutdown_grace_s)
            log.info("avserve stopped")

    app = FastAPI(
        title="avserve",
        version=API_VERSION,
        summary="Audio-visual video classification: glance + AVSlowFast.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    app.state.jobs = None

    install_exception_handlers(app)
    app.include_router(routes_classify.router)
    app.include_router(routes_models.router)
    app.include_router(routes_health.router)
    jobs = _jobs_router()
    if jobs is not None:
        app.include_router(jobs)  # type: ignore[arg-type]

    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        metrics=metrics,
    )
    app.add_middleware(
        AdmissionMiddleware,
        lifecycle=lifecycle,
        metrics=metrics,
        max_concurrent=settings.max_concurrent_requests,
        timeout_s=settings.request_timeout_s,
        max_timeout_s=settings.max_request_timeout_s,
    )
    app.add_middleware(ApiKeyMiddleware, keys=settings.load_api_keys(), metrics=metrics)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
