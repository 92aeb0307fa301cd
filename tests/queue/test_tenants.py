"""Tenant separation on both backends: jobs, idempotency keys and the backlog quota belong
to the caller's principal (an API-key id). Also the bounded paging and job-id checks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.api.errors import install_exception_handlers
from service.api.middleware import ApiKeyMiddleware
from service.queue import JobService
from tests.queue.conftest import ServiceFactory, client_for, item_urls, jobs_app

KEYS = ("key-of-tenant-one", "key-of-tenant-two")


def tenant_client(service: JobService, key: str) -> httpx.AsyncClient:
    """The jobs router behind the real API-key middleware, authenticated as ``key``."""
    app = jobs_app(service)
    install_exception_handlers(app)
    app.add_middleware(ApiKeyMiddleware, keys=KEYS)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"X-API-Key": key},
    )


def body(urls: list[str], **extra: Any) -> dict[str, Any]:
    return {"items": [{"url": u} for u in urls], **extra}


async def test_another_principal_cannot_read_cancel_or_fetch_a_job(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(None)
    async with tenant_client(service, KEYS[0]) as one, tenant_client(service, KEYS[1]) as two:
        job = (await one.post("/v1/jobs", json=body(item_urls(3)))).json()
        for method, path in (
            ("GET", f"/v1/jobs/{job['id']}"),
            ("GET", f"/v1/jobs/{job['id']}/results"),
            ("DELETE", f"/v1/jobs/{job['id']}"),
        ):
            resp = await two.request(method, path)
            assert resp.status_code == 404, (method, path)
            assert resp.json()["error"]["code"] == "job_not_found"
        # The owner still sees it, untouched by the other tenant's cancel.
        mine = await one.get(f"/v1/jobs/{job['id']}")
        assert mine.status_code == 200 and mine.json()["status"] == "queued"


async def test_idempotency_keys_are_scoped_to_the_principal(make_service: ServiceFactory) -> None:
    service = await make_service(None)
    payload = body(item_urls(2))
    headers = {"Idempotency-Key": "nightly-1"}
    async with tenant_client(service, KEYS[0]) as one, tenant_client(service, KEYS[1]) as two:
        first = await one.post("/v1/jobs", json=payload, headers=headers)
        other = await two.post("/v1/jobs", json=payload, headers=headers)
        replay = await one.post("/v1/jobs", json=payload, headers=headers)
    assert first.status_code == other.status_code == replay.status_code == 202
    assert other.json()["id"] != first.json()["id"]  # never the other tenant's job
    assert "idempotent-replayed" not in other.headers
    assert replay.json()["id"] == first.json()["id"]


async def test_one_principal_cannot_fill_the_queue_for_everyone(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(
        None, max_items_per_job=4, max_backlog_per_principal=6, max_queue_length=100
    )
    async with tenant_client(service, KEYS[0]) as one, tenant_client(service, KEYS[1]) as two:
        first = await one.post("/v1/jobs", json=body(item_urls(4)))
        assert first.status_code == 202
        over = await one.post("/v1/jobs", json=body(item_urls(3, "b")))
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "quota_exceeded"
        assert int(over.headers["retry-after"]) > 0
        # Within the quota still fits; the other tenant is not affected at all.
        assert (await one.post("/v1/jobs", json=body(item_urls(2, "c")))).status_code == 202
        assert (await two.post("/v1/jobs", json=body(item_urls(4)))).status_code == 202
        # Cancelled items stop counting: the quota frees up again.
        assert (await one.delete(f"/v1/jobs/{first.json()['id']}")).status_code == 200
        assert (await one.post("/v1/jobs", json=body(item_urls(3, "d")))).status_code == 202


def test_principal_ids_never_contain_the_key() -> None:
    from service.api.middleware import principal_for_key

    principal = principal_for_key(KEYS[0])
    assert KEYS[0] not in principal and principal != principal_for_key(KEYS[1])
    assert principal == principal_for_key(KEYS[0])  # stable across restarts


@pytest.mark.parametrize("offset", [9223372036854775807, 2**31, -1])
async def test_huge_item_offsets_are_a_typed_400_on_both_backends(
    make_service: ServiceFactory, offset: int
) -> None:
    service = await make_service(None)
    app = jobs_app(service)
    install_exception_handlers(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(2)))).json()
        resp = await client.get(f"/v1/jobs/{job['id']}", params={"offset": offset, "limit": 2})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_request"


async def test_a_job_id_with_a_trailing_newline_is_not_a_job_id(
    make_service: ServiceFactory,
) -> None:
    from service.queue.service import is_job_id

    service = await make_service(None)
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(1)))).json()
    assert is_job_id(job["id"])
    assert not is_job_id(job["id"] + "\n")
    assert not is_job_id(job["id"] + "\r\n")
    assert not is_job_id(job["id"].upper())
