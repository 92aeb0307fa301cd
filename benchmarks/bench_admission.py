"""What the slow-client defence (``service.api.admission``) costs a normal request.

1. In process: the same body-reading endpoint called through ASGI bare and behind
   ``AdmissionMiddleware`` (receive slot, body guard, work slot); microseconds per request
   for a one-chunk JSON body and a 64 KiB upload in 16 chunks.
2. Real uvicorn on loopback: latency of sequential 64 KiB uploads (the endpoint spends 2 ms
   of "work") bare, guarded, and guarded while twice the work cap of clients trickle their
   bodies at 1 byte per 0.2 s (work cap 4, so 8 slow clients).
Run: ``python -m benchmarks.bench_admission``; writes bench-results/admission.json.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.types import Receive, Scope, Send

from benchmarks.common import machine
from service.api.admission import AdmissionMiddleware
from service.api.lifecycle import Lifecycle
from service.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "admission.json"
CAP = 4
CALLS = 10_000
HTTP_REQUESTS = 300


def endpoint(work_s: float = 0.0) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if work_s:
            await asyncio.sleep(work_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def guarded(app: Any) -> AdmissionMiddleware:
    return AdmissionMiddleware(
        app,
        Lifecycle(),
        Metrics(),
        max_concurrent=CAP,
        timeout_s=60,
        max_timeout_s=600,
        max_body_bytes=1 << 20,
        max_upload_bytes=1 << 30,
        body_timeout_s=2.0,
        min_body_rate=1024.0,
    )


async def asgi_us_per_request(app: Any, chunks: list[bytes]) -> float:
    scope = {"type": "http", "method": "POST", "path": "/v1/classify", "headers": []}

    async def send(message: Any) -> None:
        return None

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    queue: list[dict[str, Any]] = []

    async def receive() -> Any:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    t0 = time.perf_counter()
    for _ in range(CALLS):
        queue[:] = messages
        await app(dict(scope), receive, send)
    return (time.perf_counter() - t0) / CALLS * 1e6


def in_process() -> list[dict[str, Any]]:
    rows = []
    bodies = {"json 2 KiB, 1 chunk": [b"x" * 2048], "upload 64 KiB, 16 chunks": [b"x" * 4096] * 16}
    for name, chunks in bodies.items():
        bare = min(asyncio.run(asgi_us_per_request(endpoint(), chunks)) for _ in range(3))
        guard = min(asyncio.run(asgi_us_per_request(guarded(endpoint()), chunks)) for _ in range(3))
        rows.append({"body": name, "bare_us": bare, "guarded_us": guard, "delta_us": guard - bare})
    return rows


class Loopback:
    """uvicorn in a thread of its own (its own event loop), on a free loopback port."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Loopback:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def trickle(port: int, stop: threading.Event) -> None:
    """One slow client: a 100 kB upload sent a byte at a time; reconnects when cut off."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                    b"Content-Type: multipart/form-data; boundary=b\r\n"
                    b"X-Request-Timeout: 600\r\n\r\n"
                )
                while not stop.is_set():
                    s.sendall(b"x")
                    time.sleep(0.2)
        except OSError:
            time.sleep(0.05)  # cut off by the body guard: come back at once


def latencies(port: int) -> list[float]:
    out = []
    body = b"x" * 65536
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(20):  # warm-up
            client.post("/v1/classify", content=body)
        for _ in range(HTTP_REQUESTS):
            t0 = time.perf_counter()
            resp = client.post("/v1/classify", content=body)
            out.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.status_code
    return out


def on_loopback() -> list[dict[str, Any]]:
    rows = []
    for name, app, slow in (
        ("bare endpoint", endpoint(0.002), 0),
        ("guarded", guarded(endpoint(0.002)), 0),
        (f"guarded, {2 * CAP} slow clients", guarded(endpoint(0.002)), 2 * CAP),
    ):
        with Loopback(app) as server:
            stop = threading.Event()
            threads = [
                threading.Thread(target=trickle, args=(server.port, stop), daemon=True)
                for _ in range(slow)
            ]
            for t in threads:
                t.start()
            time.sleep(0.5 if slow else 0)
            ms = latencies(server.port)
            stop.set()
        q = statistics.quantiles(ms, n=100)
        rows.append({"case": name, "p50_ms": q[49], "p95_ms": q[94], "ok": len(ms)})
    return rows


def main() -> None:
    asgi = in_process()
    http = on_loopback()
    console = Console()
    table = Table(title="ASGI call, same endpoint (us/request, best of 3)")
    for col in ("body", "bare", "guarded", "delta"):
        table.add_column(col)
    for r in asgi:
        table.add_row(
            r["body"], f"{r['bare_us']:.1f}", f"{r['guarded_us']:.1f}", f"{r['delta_us']:+.1f}"
        )
    console.print(table)
    table = Table(title=f"uvicorn loopback, {HTTP_REQUESTS} sequential 64 KiB uploads")
    for col in ("case", "p50 ms", "p95 ms", "200s"):
        table.add_column(col)
    for r in http:
        table.add_row(r["case"], f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", str(r["ok"]))
    console.print(table)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine(), "asgi": asgi, "loopback": http}, indent=2))


if __name__ == "__main__":
    main()
