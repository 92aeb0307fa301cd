"""Queue test helpers: fast configs, job services on both backends, a minimal jobs app."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api.routes import jobs
from service.errors import AvserveError
from service.queue import JobProcessor, JobService, QueueConfig, build_job_service


def fast_config(**overrides: Any) -> QueueConfig:
    """Timings scaled down so redelivery and retries happen within a test."""
    base = QueueConfig(
        visibility_timeout_s=1.0,
        heartbeat_interval_s=0.2,
        reaper_interval_s=0.1,
        read_block_s=0.1,
        retry_backoff_s=0.05,
        retry_backoff_max_s=0.2,
        metrics_interval_s=0.1,
        callback_backoff_s=0.01,
        callback_backoff_max_s=0.05,
        callback_timeout_s=2.0,
        shutdown_grace_s=2.0,
        item_timeout_s=10.0,
        reconnect_backoff_max_s=0.5,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


ServiceFactory = Callable[..., Awaitable[JobService]]


@pytest.fixture
async def make_service(
    backend_kind: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[ServiceFactory]:
    """Builds started JobServices on the parametrised backend (embedded worker included when
    a processor is given); stops them after the test."""
    services: list[JobService] = []

    async def make(
        processor: JobProcessor | None = None, *, start: bool = True, **overrides: Any
    ) -> JobService:
        if backend_kind == "redis":
            overrides.setdefault("redis_url", redis_url)
            overrides.setdefault("prefix", redis_prefix)
            overrides.setdefault("embedded_worker", processor is not None)
        config = fast_config(**overrides)
        service = build_job_service(config, processor)
        services.append(service)
        if start:
            await service.start()
        return service

    yield make
    for service in services:
        await service.stop(0.5)


def jobs_app(service: JobService) -> FastAPI:
    """The jobs router with a test-local error handler giving the gateway's error shape."""
    app = FastAPI()
    app.include_router(jobs.router)
    app.state.jobs = service

    @app.exception_handler(AvserveError)
    async def _typed(request: Request, exc: AvserveError) -> JSONResponse:
        headers = {"Retry-After": str(int(exc.retry_after_s))} if exc.retry_after_s else {}
        body = {"error": {"code": exc.code, "message": exc.message, "request_id": None}}
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    return app


def client_for(service: JobService) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=jobs_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_job_status(
    client: httpx.AsyncClient, job_id: str, statuses: set[str], timeout_s: float = 10.0
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal last
        last = (await client.get(f"/v1/jobs/{job_id}", params={"limit": 0})).json()
        return last.get("status") in statuses

    await wait_for(finished, timeout_s, f"job {job_id} to reach {statuses}")
    return last


def item_urls(n: int, tag: str = "v", **query: Any) -> list[str]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return [f"http://videos.example/{tag}/{i}.mp4" + (f"?{qs}" if qs else "") for i in range(n)]
