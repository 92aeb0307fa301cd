"""Slow-body clients against a real uvicorn on loopback: twice the work cap of clients that
trickle their upload (1 byte every half second, asking for a 600 s deadline) must not keep
normal requests from being served, and are themselves cut off by the body guard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from service.api import create_app
from service.settings import Settings
from tests.api.helpers import RecordingClassifier, free_port

pytestmark = pytest.mark.e2e

CAP = 2


@contextlib.asynccontextmanager
async def uvicorn_on_loopback(settings: Settings, classifier: Any) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, classifier=classifier),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def slow_upload(port: int, pause_s: float) -> bytes:
    """Declare a 100 kB upload, then send it one byte at a time; returns the status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 100000\r\nX-Request-Timeout: 600\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n\r\n'
    )
    writer.write(head.encode())
    await writer.drain()
    try:
        for _ in range(100_000):
            writer.write(b"x")
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.readline(), pause_s)
            except TimeoutError:
                continue
    except ConnectionError:
        pass
    finally:
        writer.close()
    return await reader.readline()


async def test_twice_the_cap_of_slow_uploads_leaves_normal_requests_served(
    make_settings: Any,
) -> None:
    settings = make_settings(max_concurrent_requests=CAP, body_timeout_s=3.0, min_body_rate=1024.0)
    classifier = RecordingClassifier(delay_s=0.05)
    async with uvicorn_on_loopback(settings, classifier) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = [asyncio.create_task(slow_upload(port, 0.5)) for _ in range(2 * CAP)]
        await asyncio.sleep(0.5)  # every slow client is mid-body
        statuses = []
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for i in range(6):
                files = {"file": ("v.mp4", b"\x00" * (1000 + i))}
                statuses.append((await client.post("/v1/classify", files=files)).status_code)
        assert not any(t.done() for t in slow)  # the slow ones were still sending meanwhile
        assert statuses == [200] * 6
        lines = await asyncio.wait_for(asyncio.gather(*slow), 15)
    # Cut off by the server-set body deadline, whatever X-Request-Timeout asked for.
    assert all(line.startswith(b"HTTP/1.1 408") for line in lines), lines
