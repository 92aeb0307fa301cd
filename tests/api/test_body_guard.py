"""The body guard and upload path: slow bodies, client aborts, where uploads land, the disk
budget, and the jobs route's body cap."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api.helpers import RecordingClassifier, serve_in_process
from tests.api.test_http_contract import assert_error

BOUNDARY = "avserve-test-boundary"


def multipart(data: bytes, **fields: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return b"".join(parts) + head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


async def trickle(chunks: list[bytes], pause_s: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(pause_s)


def errors(app: FastAPI, code: str) -> float | None:
    value: float | None = app.state.metrics.registry.get_sample_value(
        "avserve_http_errors_total", {"code": code}
    )
    return value


async def test_a_body_slower_than_the_minimum_rate_gets_408_whatever_the_client_asks(
    make_settings: Any,
) -> None:
    settings = make_settings(body_timeout_s=0.5, min_body_rate=1000, max_request_timeout_s=600)
    classifier = RecordingClassifier()
    async with serve_in_process(settings, classifier) as (app, client):
        body = multipart(b"\x01" * 200)
        resp = await client.post(
            "/v1/classify",
            content=trickle([body[i : i + 10] for i in range(0, len(body), 10)], 0.1),
            headers={**MULTIPART, "X-Request-Timeout": "600"},
        )
        assert_error(resp, 408, "body_timeout")
        assert classifier.calls == []
        assert app.state.lifecycle.receiving == app.state.lifecycle.work == 0
        # A body at a normal rate passes the same guard.
        ok = await client.post("/v1/classify", content=multipart(b"\x01" * 200), headers=MULTIPART)
        assert ok.status_code == 200, ok.text
    assert len(list(Path(settings.tmp_dir).glob("avserve-*"))) == 0  # nothing left behind


async def test_a_trickling_body_holds_no_work_slot(make_settings: Any) -> None:
    settings = make_settings(max_concurrent_requests=1, body_timeout_s=30, min_body_rate=1)
    classifier = RecordingClassifier()
    async with serve_in_process(settings, classifier) as (app, client):
        body = multipart(b"\x01" * 100)
        slow = asyncio.create_task(
            client.post(
                "/v1/classify", content=trickle([body[:50], body[50:]], 1.0), headers=MULTIPART
            )
        )
        while app.state.lifecycle.receiving == 0:
            await asyncio.sleep(0.01)
        assert app.state.lifecycle.work == 0
        fast = await client.post("/v1/classify", content=multipart(b"\x02" * 10), headers=MULTIPART)
        assert fast.status_code == 200, fast.text
        assert (await slow).status_code == 200


async def test_a_client_that_disconnects_mid_upload_is_a_client_abort(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (app, _):
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": multipart(b"\x01" * 1000)[:300], "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/classify",
            "raw_path": b"/v1/classify",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", MULTIPART["content-type"].encode())],
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        with caplog.at_level(logging.INFO):
            await app(scope, receive, send)
        assert sent[0]["status"] == 499
        assert errors(app, "client_closed") == 1
        assert errors(app, "internal") is None
        labels = {"route": "/v1/classify", "method": "POST", "status": "499"}
        assert (
            app.state.metrics.registry.get_sample_value("avserve_http_requests_total", labels) == 1
        )
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_uploads_are_written_once_into_the_tmp_dir_not_system_temp(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # System temp points nowhere: anything spooled there fails the request.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-system-temp"))
    classifier = RecordingClassifier()
    settings = make_settings(tmp_dir=tmp_path / "spool")
    Path(settings.tmp_dir).mkdir()
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB: past any in-memory spooling threshold
    async with serve_in_process(settings, classifier) as (_, client):
        resp = await client.post(
            "/v1/classify", content=multipart(data, top_k="2"), headers=MULTIPART
        )
    assert resp.status_code == 200, resp.text
    (call,) = classifier.calls
    assert call.data == data and call.options.top_k == 2


async def test_uploads_past_the_disk_budget_get_507(make_settings: Any) -> None:
    classifier = RecordingClassifier(delay_s=1.0)
    settings = make_settings(tmp_budget_bytes=3 * 1024 * 1024)
    data = b"\x01" * (2 * 1024 * 1024)
    async with serve_in_process(settings, classifier) as (app, client):
        first = asyncio.create_task(
            client.post("/v1/classify", content=multipart(data), headers=MULTIPART)
        )
        await asyncio.wait_for(classifier.started.wait(), 10)
        second = await client.post("/v1/classify", content=multipart(data), headers=MULTIPART)
        assert_error(second, 507, "insufficient_storage")
        assert "retry-after" in second.headers
        assert (await first).status_code == 200
        assert app.state.tmp_budget.used == 0  # given back once the upload was deleted
        again = await client.post("/v1/classify", content=multipart(data), headers=MULTIPART)
        assert again.status_code == 200


async def test_uploads_are_refused_when_the_volume_is_nearly_full(make_settings: Any) -> None:
    settings = make_settings(tmp_min_free_bytes=1 << 62)  # more free space than any disk has
    async with serve_in_process(settings, RecordingClassifier()) as (_, client):
        resp = await client.post("/v1/classify", content=multipart(b"\x01" * 10), headers=MULTIPART)
    assert_error(resp, 507, "insufficient_storage")


@pytest.mark.parametrize(
    "body",
    [
        multipart(b"\x01" * 10).replace(
            b'name="file"; filename="v.mp4"', b'name="other"; filename="x"'
        ),
        multipart(b"\x01" * 10)[:-10],  # truncated: no closing boundary
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="k"\r\n\r\n2\r\n--{BOUNDARY}--\r\n'.encode(),
    ],
    ids=["file-in-another-part", "truncated", "no-file"],
)
async def test_malformed_uploads_are_a_typed_400(make_settings: Any, body: bytes) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (_, client):
        resp = await client.post("/v1/classify", content=body, headers=MULTIPART)
    assert_error(resp, 400, "invalid_request")


async def test_a_slow_job_submission_gets_408_too(make_settings: Any) -> None:
    settings = make_settings(body_timeout_s=0.3, min_body_rate=100)
    body = b'{"items": [{"url": "http://videos.example/v.mp4"}]}'
    async with serve_in_process(settings, RecordingClassifier()) as (app, client):
        resp = await client.post(
            "/v1/jobs",
            content=trickle([body[i : i + 4] for i in range(0, len(body), 4)], 0.1),
            headers={"content-type": "application/json"},
        )
        assert_error(resp, 408, "body_timeout")
        assert errors(app, "internal") is None


async def test_receive_slots_are_bounded_apart_from_work_slots(make_settings: Any) -> None:
    settings = make_settings(max_receiving_requests=1, body_timeout_s=30, min_body_rate=1)
    async with serve_in_process(settings, RecordingClassifier()) as (app, client):
        body = multipart(b"\x01" * 100)
        slow = asyncio.create_task(
            client.post(
                "/v1/classify", content=trickle([body[:50], body[50:]], 1.0), headers=MULTIPART
            )
        )
        while app.state.lifecycle.receiving == 0:
            await asyncio.sleep(0.01)
        second = await client.post("/v1/classify", content=body, headers=MULTIPART)
        assert_error(second, 429, "overloaded")
        assert (await client.get("/v1/models")).status_code == 200  # reads are not work
        assert (await slow).status_code == 200


async def test_url_downloads_count_against_the_disk_budget(
    make_settings: Any, media_server: str, media_dir: Path
) -> None:
    name = min((p for p in media_dir.glob("*.mp4")), key=lambda p: p.stat().st_size).name
    url = f"http://{media_server}/{name}"
    fetch = {"allow_hosts": [media_server]}
    tight = make_settings(fetch=fetch, tmp_budget_bytes=1000)
    async with serve_in_process(tight, RecordingClassifier()) as (app, client):
        resp = await client.post("/v1/classify", json={"url": url})
        assert_error(resp, 507, "insufficient_storage")
        assert app.state.tmp_budget.used == 0
    async with serve_in_process(make_settings(fetch=fetch), RecordingClassifier()) as (_, c):
        assert (await c.post("/v1/classify", json={"url": url})).status_code == 200
