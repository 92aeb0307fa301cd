"""The gateway's routes, one module per resource; ``api_router`` gathers them.

``/v1``: classify, models, jobs (the work API). ``/v2``: Open Inference Protocol health.
``/metrics``: the Prometheus scrape. Every path comes from ``service.api.paths``.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import classify, health, jobs, models


def api_router() -> APIRouter:
    router = APIRouter()
    for module in (classify, models, jobs, health):
        router.include_router(module.router)
    return router
