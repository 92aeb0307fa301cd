"""The FastAPI app factory: ``create_app(settings) -> FastAPI``.

Lifespan: load and warm up the models, build the pipelines and the job service, mark ready; on
shutdown: not ready, wait for in-flight requests (bounded by the grace period), stop jobs,
drain the batchers, close the decode pool.

``app.state`` holds: ``settings``, ``metrics`` (this app's own Prometheus registry),
``lifecycle`` (ready/draining/in-flight), ``services`` (``service.wiring.Services``: models,
decode pool, jobs; set once the lifespan started) and ``jobs`` (the job service or None).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import paths
from service.api.admission import AdmissionMiddleware, job_body_limit
from service.api.errors import install_exception_handlers
from service.api.lifecycle import Lifecycle
from service.api.middleware import ApiKeyMiddleware, RequestContextMiddleware
from service.api.routes import api_router
from service.api.tmp_budget import TmpBudget
from service.api.ui import install_ui
from service.metrics import Metrics
from service.registry import Classifier
from service.settings import Settings
from service.wiring import start_services

log = logging.getLogger(__name__)

API_VERSION = "1"


def create_app(
    settings: Settings | None = None,
    *,
    classifier: Classifier | None = None,
    on_ready: Callable[[], object] | None = None,
) -> FastAPI:
    """Build the gateway. A ``classifier`` stand-in replaces every model's pipeline (tests);
    ``on_ready`` runs once the services stand, before the gateway reports ready."""
    settings = settings or Settings()
    metrics = Metrics()
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings, metrics, classifier=classifier)
        app.state.services = services
        app.state.jobs = services.jobs
        if on_ready is not None:
            on_ready()
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
        docs_url=None,  # service.api.ui serves /docs and /redoc with local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    app.state.jobs = None
    app.state.tmp_budget = TmpBudget(
        settings.tmp_dir, settings.tmp_budget_bytes, settings.tmp_min_free_bytes
    )

    install_exception_handlers(app)
    app.include_router(api_router())
    install_ui(app)

    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(
        AdmissionMiddleware,
        lifecycle=lifecycle,
        metrics=metrics,
        max_concurrent=settings.max_concurrent_requests,
        max_receiving=settings.max_receiving_requests,
        timeout_s=settings.request_timeout_s,
        max_timeout_s=settings.max_request_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        min_body_rate=settings.min_body_rate,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        path_limits={paths.JOBS: job_body_limit(settings)},
    )
    app.add_middleware(ApiKeyMiddleware, keys=settings.load_api_keys(), metrics=metrics)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
