"""The /v1/jobs API on both backends (in-process and real Redis): same behaviour."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from service.errors import MediaError
from service.schemas import ClassifyOptions
from tests.queue.conftest import ServiceFactory, client_for, item_urls, wait_job_status
from tests.queue.processors import run_scripted, url_digest


def body(urls: list[str], **extra: Any) -> dict[str, Any]:
    return {"items": [{"url": u} for u in urls], **extra}


async def test_submitted_job_reports_one_result_per_item(make_service: ServiceFactory) -> None:
    service = await make_service(run_scripted, concurrency=4)
    urls = item_urls(12, sleep=0.01)
    async with client_for(service) as client:
        resp = await client.post("/v1/jobs", json=body(urls, top_k=3))
        assert resp.status_code == 202
        job = resp.json()
        assert resp.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["progress"]["total"] == 12
        assert job["status"] in ("queued", "running")
        # the answer lists the job's items, not an empty page
        assert [(i["index"], i["url"]) for i in job["items"]] == list(enumerate(urls))
        assert job["durable"] is (service.backend.kind == "redis")

        done = await wait_job_status(client, job["id"], {"done", "failed"})
        assert done["status"] == "done"
        assert done["progress"] == {
            "total": 12,
            "done": 12,
            "failed": 0,
            "cancelled": 0,
            "pending": 0,
        }
        assert done["finished_at"] is not None and done["started_at"] is not None

        lines = (await client.get(f"/v1/jobs/{job['id']}/results")).text.splitlines()
        items = [json.loads(line) for line in lines]
        assert [i["index"] for i in items] == list(range(12))
        for item, url in zip(items, urls, strict=True):
            assert item["state"] == "done"
            assert item["url"] == url
            assert item["result"]["digest"] == url_digest(url)
            assert item["result"]["top_k"] == 3  # the job's options reached the processor


async def test_items_are_paged_in_job_status(make_service: ServiceFactory) -> None:
    service = await make_service(run_scripted)
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(7)))).json()
        await wait_job_status(client, job["id"], {"done"})
        page = (await client.get(f"/v1/jobs/{job['id']}", params={"offset": 5, "limit": 5})).json()
        assert [i["index"] for i in page["items"]] == [5, 6]
        assert page["items_next"] is None
        first = (await client.get(f"/v1/jobs/{job['id']}", params={"limit": 3})).json()
        assert [i["index"] for i in first["items"]] == [0, 1, 2]
        assert first["items_next"] == 3


async def test_same_idempotency_key_and_body_returns_the_same_job(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(None)  # no worker: nothing changes between the two calls
    payload = body(item_urls(3), policy="uniform", k=2)
    async with client_for(service) as client:
        headers = {"Idempotency-Key": "nightly-2024-06-01", "Content-Type": "application/json"}
        first = await client.post("/v1/jobs", content=json.dumps(payload), headers=headers)
        # Same body, other spelling (key order, spacing): still the same request.
        respelled = json.dumps(dict(reversed(list(payload.items()))), indent=2)
        second = await client.post("/v1/jobs", content=respelled, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    stats = await service.backend.stats()
    assert stats.counters["jobs_submitted"] == 1
    assert stats.counters["items_submitted"] == 3


async def test_same_idempotency_key_with_another_body_is_a_conflict(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(None)
    async with client_for(service) as client:
        headers = {"Idempotency-Key": "k-1"}
        first = await client.post("/v1/jobs", json=body(item_urls(2)), headers=headers)
        other = await client.post("/v1/jobs", json=body(item_urls(3)), headers=headers)
        without_key = await client.post("/v1/jobs", json=body(item_urls(2)))
    assert first.status_code == 202
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert without_key.status_code == 202 and without_key.json()["id"] != first.json()["id"]


async def test_cancel_stops_items_that_have_not_started(make_service: ServiceFactory) -> None:
    gate = asyncio.Event()
    started: list[str] = []

    async def gated(url: str, options: ClassifyOptions) -> dict[str, Any]:
        started.append(url)
        await gate.wait()
        return {"url": url}

    service = await make_service(gated, concurrency=1)
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(5)))).json()
        await wait_job_status(client, job["id"], {"running"})
        while not started:
            await asyncio.sleep(0.01)
        cancelled = await client.delete(f"/v1/jobs/{job['id']}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["progress"]["cancelled"] == 4
        gate.set()  # the running item finishes normally
        final = await wait_job_status(client, job["id"], {"cancelled"})
        await asyncio.sleep(0.3)  # give workers time to (wrongly) pick up cancelled items
        final = (await client.get(f"/v1/jobs/{job['id']}")).json()
        assert final["progress"] == {
            "total": 5,
            "done": 1,
            "failed": 0,
            "cancelled": 4,
            "pending": 0,
        }
        assert final["finished_at"] is not None
        assert started == [item_urls(5)[0]]
        assert [i["state"] for i in final["items"]] == ["done"] + ["cancelled"] * 4
        again = await client.delete(f"/v1/jobs/{job['id']}")
        assert again.status_code == 200 and again.json()["status"] == "cancelled"


async def test_cancelling_a_finished_job_is_a_conflict(make_service: ServiceFactory) -> None:
    service = await make_service(run_scripted)
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(2)))).json()
        await wait_job_status(client, job["id"], {"done"})
        resp = await client.delete(f"/v1/jobs/{job['id']}")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "conflict"


async def test_job_and_idempotency_key_expire_after_the_result_ttl(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(run_scripted, result_ttl_s=0.6)
    async with client_for(service) as client:
        headers = {"Idempotency-Key": "ttl-key"}
        job = (await client.post("/v1/jobs", json=body(item_urls(2)), headers=headers)).json()
        await wait_job_status(client, job["id"], {"done"}, timeout_s=5)
        assert (await client.get(f"/v1/jobs/{job['id']}")).status_code == 200
        await asyncio.sleep(0.9)
        gone = await client.get(f"/v1/jobs/{job['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "job_not_found"
        assert (await client.get(f"/v1/jobs/{job['id']}/results")).status_code == 404
        # The key expired with the job: the same request makes a new job.
        again = await client.post("/v1/jobs", json=body(item_urls(2)), headers=headers)
        assert again.status_code == 202 and again.json()["id"] != job["id"]


async def test_poison_item_is_dead_lettered_after_max_deliveries(
    make_service: ServiceFactory,
) -> None:
    calls: dict[str, int] = {}

    async def counting(url: str, options: ClassifyOptions) -> dict[str, Any]:
        calls[url] = calls.get(url, 0) + 1
        return await run_scripted(url, options)

    service = await make_service(counting, max_deliveries=3)
    urls = [*item_urls(2), "http://videos.example/poison.mp4?crash=1"]
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(urls))).json()
        final = await wait_job_status(client, job["id"], {"done", "failed"}, timeout_s=15)
        assert final["status"] == "done"  # the other items succeeded
        assert final["progress"]["done"] == 2 and final["progress"]["failed"] == 1
        items = (await client.get(f"/v1/jobs/{job['id']}")).json()["items"]
    poisoned = items[2]
    assert poisoned["state"] == "failed"
    assert poisoned["error"]["code"] == "internal"
    assert "scripted crash" in poisoned["error"]["message"]  # the last error is reported
    assert poisoned["deliveries"] == 3
    assert calls[urls[2]] == 3
    dead = await service.backend.dead_letters()
    assert [(d["job"], d["item"]) for d in dead] == [(job["id"], "2")]
    stats = await service.backend.stats()
    assert stats.dead_letter == 1


async def test_typed_input_error_is_final_and_not_retried(make_service: ServiceFactory) -> None:
    calls = 0

    async def undecodable(url: str, options: ClassifyOptions) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise MediaError("moov atom not found", code="undecodable")

    service = await make_service(undecodable, max_deliveries=3)
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body(item_urls(1)))).json()
        final = await wait_job_status(client, job["id"], {"done", "failed"})
        item = (await client.get(f"/v1/jobs/{job['id']}")).json()["items"][0]
    assert final["status"] == "failed"
    assert item["error"] == {
        "code": "undecodable",
        "message": "moov atom not found",
        "request_id": None,
    }
    assert calls == 1
    assert (await service.backend.stats()).dead_letter == 0


async def test_transient_failure_is_retried_then_succeeds(
    make_service: ServiceFactory, tmp_path: Any
) -> None:
    service = await make_service(run_scripted, max_deliveries=3)
    url = f"http://videos.example/flaky.mp4?flaky={tmp_path / 'flaky'}"
    async with client_for(service) as client:
        job = (await client.post("/v1/jobs", json=body([url]))).json()
        final = await wait_job_status(client, job["id"], {"done", "failed"})
        item = (await client.get(f"/v1/jobs/{job['id']}")).json()["items"][0]
    assert final["status"] == "done"
    assert item["deliveries"] == 2


async def test_full_queue_answers_429(make_service: ServiceFactory) -> None:
    service = await make_service(None, max_queue_length=5, stream_maxlen=100)
    async with client_for(service) as client:
        assert (await client.post("/v1/jobs", json=body(item_urls(4)))).status_code == 202
        full = await client.post("/v1/jobs", json=body(item_urls(2)))
        fits = await client.post("/v1/jobs", json=body(item_urls(1)))
    assert full.status_code == 429
    assert full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["retry-after"]) > 0
    assert fits.status_code == 202


async def test_too_many_items_are_refused(make_service: ServiceFactory) -> None:
    service = await make_service(None, max_items_per_job=3)
    async with client_for(service) as client:
        resp = await client.post("/v1/jobs", json=body(item_urls(4)))
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_large"


async def test_unknown_and_malformed_job_ids_are_not_found(make_service: ServiceFactory) -> None:
    service = await make_service(None)
    async with client_for(service) as client:
        for job_id in ("0" * 32, "not-a-job", "*"):
            for method, path in (
                ("GET", f"/v1/jobs/{job_id}"),
                ("GET", f"/v1/jobs/{job_id}/results"),
                ("DELETE", f"/v1/jobs/{job_id}"),
            ):
                resp = await client.request(method, path)
                assert resp.status_code == 404, (method, path)
                assert resp.json()["error"]["code"] == "job_not_found"


async def test_non_http_item_urls_are_rejected(make_service: ServiceFactory) -> None:
    service = await make_service(None)
    async with client_for(service) as client:
        resp = await client.post("/v1/jobs", json=body(["file:///etc/passwd"]))
        empty = await client.post("/v1/jobs", json={"items": []})
    assert resp.status_code == 422 and empty.status_code == 422


async def test_high_priority_items_are_served_before_batch_items(
    make_service: ServiceFactory,
) -> None:
    order: list[str] = []

    async def recording(url: str, options: ClassifyOptions) -> dict[str, Any]:
        order.append(url)
        return {"url": url}

    service = await make_service(recording, start=False, concurrency=1)
    async with client_for(service) as client:
        batch = (await client.post("/v1/jobs", json=body(item_urls(4, "batch")))).json()
        high = (
            await client.post("/v1/jobs", json=body(item_urls(3, "high"), priority="high"))
        ).json()
        await service.start()
        await wait_job_status(client, batch["id"], {"done"})
        await wait_job_status(client, high["id"], {"done"})
    # One batch item may already be in the worker's hands when high items are seen.
    assert ["high" in u for u in order[:4]].count(True) == 3
    assert order[-1] == item_urls(4, "batch")[-1]
