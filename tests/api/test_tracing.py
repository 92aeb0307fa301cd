"""Tracing: stage spans of a request, one trace from ``POST /v1/jobs`` through Redis to the
worker, OTLP export when configured, nothing loaded when not."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import tracing
from service.api.logs import JsonFormatter
from service.queue import QueueConfig, build_job_service
from service.queue.schemas import JobCreate
from tests.api.helpers import serve_in_process

REPO = Path(__file__).resolve().parents[2]
VIDEO = "mdn-ie__flower.mp4"
# The shipped package has a glance network: its default policy runs every stage.
STAGES = {"probe", "glance_decode", "glance_net", "clip_decode", "heavy_net", "fusion"}
BATCHER = {"batch_wait", "batch_run"}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider)
    yield memory
    tracing.use_provider(None)
    provider.shutdown()


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def _trace_ids(spans: tuple[ReadableSpan, ...]) -> set[str]:
    return {format(s.context.trace_id, "032x") for s in spans if s.context is not None}


@pytest.mark.slow
async def test_a_classify_request_yields_a_span_per_stage_carrying_the_request_id(
    make_settings: Any, media_dir: Path, exporter: InMemorySpanExporter, one_torch_thread: None
) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "X-Request-ID": "trace-req-1",
        "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
    }
    async with serve_in_process(make_settings(model_dir=None)) as (_, client):
        r = await client.post(
            "/v1/classify",
            files={"file": (VIDEO, (media_dir / VIDEO).read_bytes())},
            data={"k": "2"},
            headers=headers,
            timeout=120,
        )
    assert r.status_code == 200, r.text
    assert r.json()["policy"] == "glance"
    # The request's trace continues the caller's (start-up warm-up runs traces of its own).
    spans = tuple(s for s in exporter.get_finished_spans() if _trace_ids((s,)) == {caller_trace})
    names = _by_name(spans)
    assert STAGES | BATCHER | {"POST /v1/classify"} <= set(names)
    server = names["POST /v1/classify"][0]
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.route"] == "/v1/classify"
    assert all(
        s.attributes and s.attributes[tracing.REQUEST_ID_ATTR] == "trace-req-1" for s in spans
    )
    # The batcher's spans hang under the heavy stage and fit inside it.
    heavy = names["heavy_net"][0]
    for name in BATCHER:
        s = names[name][0]
        assert s.parent is not None and heavy.context is not None
        assert s.parent.span_id == heavy.context.span_id
        assert heavy.start_time is not None and heavy.end_time is not None
        assert s.start_time is not None and s.end_time is not None
        assert heavy.start_time <= s.start_time <= s.end_time <= heavy.end_time
    assert names["batch_run"][0].attributes["avserve.clips"] == 2  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.redis
async def test_a_job_item_is_one_trace_from_the_gateway_through_redis_to_the_worker(
    make_settings: Any,
    media_server: str,
    redis_url: str,
    redis_prefix: str,
    exporter: InMemorySpanExporter,
    one_torch_thread: None,
) -> None:
    settings = make_settings(
        model_dir=None,
        redis_url=redis_url,
        queue={"prefix": redis_prefix, "embedded_worker": True},
        fetch={"allow_hosts": [media_server]},
    )
    item = {"url": f"http://{media_server}/{VIDEO}"}
    async with serve_in_process(settings) as (_, client):
        r = await client.post(
            "/v1/jobs",
            json={"items": [item], "k": 2},
            headers={"X-Request-ID": "trace-job-1"},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while (await client.get(f"/v1/jobs/{job_id}")).json()["status"] != "done":
            assert time.monotonic() < deadline, "the job did not finish"
            await asyncio.sleep(0.1)
    spans = exporter.get_finished_spans()
    names = _by_name(spans)
    enqueue = names["jobs.enqueue"][0]
    assert enqueue.context is not None
    trace_id = format(enqueue.context.trace_id, "032x")
    # The worker's read loop started before the request: only the stream entry links them.
    item_span = names["job.item"][0]
    assert item_span.parent is not None and item_span.parent.span_id == enqueue.context.span_id
    # Start-up warm-up and the status polls run traces of their own.
    job_spans = [s for s in spans if _trace_ids((s,)) == {trace_id}]
    assert {"POST /v1/jobs", "jobs.enqueue", "job.item", "fetch"} | STAGES <= {
        s.name for s in job_spans
    }
    assert all(
        s.attributes and s.attributes[tracing.REQUEST_ID_ATTR] == "trace-job-1" for s in job_spans
    )


@pytest.mark.redis
async def test_a_stream_entry_carries_the_enqueue_spans_traceparent_and_the_request_id(
    redis_url: str, redis_prefix: str, exporter: InMemorySpanExporter
) -> None:
    service = build_job_service(QueueConfig(redis_url=redis_url, prefix=redis_prefix), None)
    await service.start()
    token = tracing.request_id_var.set("entry-req")
    try:
        body = JobCreate.model_validate({"items": [{"url": "https://v.example/a.mp4"}] * 2})
        job, _ = await service.submit(body, None)
    finally:
        tracing.request_id_var.reset(token)
        await service.stop(0)
    (enqueue,) = exporter.get_finished_spans()
    assert enqueue.name == "jobs.enqueue" and enqueue.context is not None
    assert enqueue.attributes is not None and enqueue.attributes["avserve.job_id"] == job.id
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = [fields for _, fields in client.xrange(f"{redis_prefix}:stream:batch")]
    finally:
        client.close()
    parent = f"00-{enqueue.context.trace_id:032x}-{enqueue.context.span_id:016x}-"
    assert [e["item"] for e in entries] == ["0", "1"]
    for e in entries:
        assert e["traceparent"].startswith(parent)
        assert (e["job"], e["request_id"]) == (job.id, "entry-req")


def test_a_worker_log_line_names_the_submitting_request_and_its_trace(
    exporter: InMemorySpanExporter,
) -> None:
    fields = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    record = logging.makeLogRecord({"msg": "item done", "levelno": logging.INFO})
    with tracing.consumer_span("job.item", {**fields, "request_id": "req-7"}):
        line = json.loads(JsonFormatter().format(record))
        tracing.RequestIdFilter().filter(record)  # the worker's plain-text format
    assert line["request_id"] == "req-7"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert record.request_id == "req-7"
    assert tracing.request_id_var.get() is None  # restored after the item


_OFF_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from service import tracing
    from service.api import create_app
    from service.settings import Settings

    async def main():
        app = create_app(Settings(device="cpu", tmp_dir=sys.argv[2]))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                with open(sys.argv[1], "rb") as f:
                    r = await c.post("/v1/classify", files={"file": ("v.mp4", f.read())},
                                     data={"k": "1"}, timeout=120)
                assert r.status_code == 200, r.text
        shared = tracing.span("probe") is tracing.span("fetch", {"server.address": "h"})
        loaded = sorted(m for m in sys.modules
                        if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
        print(json.dumps({"enabled": tracing.enabled(), "loaded": loaded, "shared": shared}))

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_with_tracing_off_no_sdk_is_loaded_and_a_span_is_a_shared_no_op(
    media_dir: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AVSERVE_", "OTEL_"))}
    env |= {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _OFF_SCRIPT, str(media_dir / VIDEO), str(tmp_path)],
        cwd=tmp_path,  # no .env
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # A disabled span is one call handing back one shared no-op object: nothing allocated,
    # no OpenTelemetry code run.
    assert seen == {"enabled": False, "loaded": [], "shared": True}


class _Collector(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


_ON_SCRIPT = textwrap.dedent(
    """
    import sys
    from opentelemetry import trace
    from service import tracing

    assert tracing.configure(sys.argv[1], service_name="avserve-test")
    tracing.request_id_var.set("otlp-req")
    with tracing.span("probe", {"avserve.k": 3}):
        pass
    assert trace.get_tracer_provider().force_flush(10_000)
    """
)


def test_with_an_otlp_endpoint_spans_reach_the_collector(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.bodies = []
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AVSERVE_", "OTEL_"))}
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        out = subprocess.run(
            [sys.executable, "-c", _ON_SCRIPT, endpoint],
            cwd=tmp_path,
            env=env | {"PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr[-3000:]
    request = ExportTraceServiceRequest()
    request.ParseFromString(b"".join(_Collector.bodies[:1]))
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "avserve-test"
    (span,) = [s for ss in resource_spans.scope_spans for s in ss.spans]
    attrs = {a.key: a.value for a in span.attributes}
    assert span.name == "probe"
    assert attrs[tracing.REQUEST_ID_ATTR].string_value == "otlp-req"
    assert attrs["avserve.k"].int_value == 3


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://c.example/v1/traces", "https://c.example/v1/traces"),
    ],
)
def test_the_traces_url_is_derived_from_a_collector_base_url(given: str, url: str) -> None:
    assert tracing.traces_endpoint(given) == url


@pytest.mark.parametrize("var", ["AVSERVE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"])
def test_an_endpoint_that_is_not_http_is_a_one_line_start_up_error(
    var: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pydantic import ValidationError

    from service.settings import Settings
    from service.startup import describe_settings_error

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(var, "grpc://collector:4317")
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_settings_error(caught.value)
    assert "\n" not in line
    assert line.startswith("invalid setting AVSERVE_OTLP_ENDPOINT=grpc://collector:4317")
