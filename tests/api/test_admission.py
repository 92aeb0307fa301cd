"""Admission control: API keys, concurrency cap, deadlines, draining, body caps, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx

from tests.api.helpers import RecordingClassifier, serve_in_process
from tests.api.test_http_contract import assert_error

VIDEO = ("v.mp4", b"\x00\x00\x00\x18ftypmp42 not really a video")


async def test_api_keys_guard_v1_but_not_health_or_metrics(make_settings: Any) -> None:
    settings = make_settings(api_keys="k-one,k-two")
    async with serve_in_process(settings, RecordingClassifier()) as (_, client):
        assert_error(await client.get("/v1/models"), 401, "unauthorized")
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer k-three"})
        assert_error(wrong, 401, "unauthorized")
        assert wrong.headers["www-authenticate"] == "Bearer"
        prefix = await client.get("/v1/models", headers={"X-API-Key": "k-on"})
        assert_error(prefix, 401, "unauthorized")
        ok_bearer = await client.get("/v1/models", headers={"Authorization": "Bearer k-two"})
        ok_header = await client.get("/v1/models", headers={"X-API-Key": "k-one"})
        assert ok_bearer.status_code == ok_header.status_code == 200
        for open_path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
            assert (await client.get(open_path)).status_code == 200


async def test_api_keys_can_come_from_a_secret_file(make_settings: Any, tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("# rotated 2025-01\nfile-key\n\n")
    async with serve_in_process(make_settings(api_keys_file=secret)) as (_, client):
        assert (await client.get("/v1/models")).status_code == 401
        assert (
            await client.get("/v1/models", headers={"X-API-Key": "file-key"})
        ).status_code == 200


async def test_requests_over_the_concurrency_cap_get_429_with_retry_after(
    make_settings: Any,
) -> None:
    classifier = RecordingClassifier(delay_s=0.5)
    async with serve_in_process(make_settings(max_concurrent_requests=1), classifier) as (app, c):
        first = asyncio.create_task(c.post("/v1/classify", files={"file": VIDEO}))
        await asyncio.wait_for(classifier.started.wait(), 5)
        second = await c.post("/v1/classify", files={"file": VIDEO})
        assert_error(second, 429, "overloaded")
        assert int(second.headers["retry-after"]) >= 1
        assert (await first).status_code == 200
        # Reads are not work: they pass while the cap is reached.
        assert (await c.get("/v1/models")).status_code == 200
        reg = app.state.metrics.registry
        labels = {"route": "/v1/classify", "method": "POST", "status": "429"}
        assert reg.get_sample_value("avserve_http_requests_total", labels) == 1
        assert reg.get_sample_value("avserve_http_errors_total", {"code": "overloaded"}) == 1


async def test_a_request_past_its_deadline_gets_504(make_settings: Any) -> None:
    classifier = RecordingClassifier(delay_s=5)
    async with serve_in_process(make_settings(), classifier) as (_, client):
        resp = await client.post(
            "/v1/classify", files={"file": VIDEO}, headers={"X-Request-Timeout": "0.2"}
        )
    assert_error(resp, 504, "deadline_exceeded")
    assert classifier.cancelled == 1  # the work was stopped, not left running


async def test_the_deadline_reaches_the_pipeline_and_is_capped(make_settings: Any) -> None:
    classifier = RecordingClassifier()
    settings = make_settings(request_timeout_s=10, max_request_timeout_s=20)
    async with serve_in_process(settings, classifier) as (_, client):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await client.post("/v1/classify", files={"file": VIDEO})
        await client.post(
            "/v1/classify", files={"file": VIDEO}, headers={"X-Request-Timeout": "999"}
        )
        bad = await client.post(
            "/v1/classify", files={"file": VIDEO}, headers={"X-Request-Timeout": "soon"}
        )
    default, capped = (c.deadline for c in classifier.calls)
    assert default is not None and capped is not None
    assert 9 < default - t0 <= 10.5
    assert 19 < capped - t0 <= 20.5
    assert_error(bad, 400, "invalid_request")


async def test_a_draining_server_refuses_new_work_but_answers_reads(make_settings: Any) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (app, client):
        app.state.lifecycle.begin_drain()
        resp = await client.post("/v1/classify", files={"file": VIDEO})
        assert_error(resp, 503, "shutting_down")
        assert "retry-after" in resp.headers
        assert_error(await client.get("/v2/health/ready"), 503, "shutting_down")
        assert (await client.get("/v2/health/live")).status_code == 200
        assert (await client.get("/v1/models")).status_code == 200


async def test_an_upload_over_the_cap_is_refused_with_413(make_settings: Any) -> None:
    classifier = RecordingClassifier()
    async with serve_in_process(make_settings(max_upload_bytes=10_000), classifier) as (_, c):
        big = await c.post("/v1/classify", files={"file": ("v.mp4", b"\x01" * 20_000)})
        small = await c.post("/v1/classify", files={"file": ("v.mp4", b"\x01" * 5_000)})
    assert_error(big, 413, "too_large")
    assert small.status_code == 200
    assert [len(call.data) for call in classifier.calls] == [5_000]


async def test_a_streamed_body_over_the_cap_is_cut_off_with_413(make_settings: Any) -> None:
    async def body() -> Any:  # no Content-Length: the cap applies while streaming
        for _ in range(10):
            yield b"{" * 1000

    async with serve_in_process(make_settings(max_body_bytes=2_000)) as (_, client):
        resp = await client.post(
            "/v1/classify", content=body(), headers={"content-type": "application/json"}
        )
    assert_error(resp, 413, "too_large")


async def test_upload_options_arrive_as_form_fields(make_settings: Any) -> None:
    classifier = RecordingClassifier()
    async with serve_in_process(make_settings(), classifier) as (_, client):
        resp = await client.post(
            "/v1/classify",
            files={"file": VIDEO},
            data={"policy": "dense", "top_k": "3", "return_windows": "false"},
        )
        bad = await client.post("/v1/classify", files={"file": VIDEO}, data={"k": "lots"})
        missing = await client.post("/v1/classify", files={"other": VIDEO})
    assert resp.status_code == 200, resp.text
    (call,) = classifier.calls
    assert call.data == VIDEO[1]
    assert (call.options.policy, call.options.top_k, call.options.return_windows) == (
        "dense",
        3,
        False,
    )
    assert_error(bad, 400, "invalid_request")
    assert_error(missing, 400, "invalid_request")


async def test_a_client_that_disconnects_has_its_work_cancelled(make_settings: Any) -> None:
    classifier = RecordingClassifier(delay_s=10)
    async with serve_in_process(make_settings(), classifier) as (app, client):
        request = asyncio.create_task(client.post("/v1/classify", files={"file": VIDEO}))
        await asyncio.wait_for(classifier.started.wait(), 5)
        request.cancel()  # httpx's ASGI transport reports this to the app as http.disconnect
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await request
        for _ in range(100):
            if classifier.cancelled:
                break
            await asyncio.sleep(0.02)
        assert classifier.cancelled == 1
        assert app.state.lifecycle.work == 0
