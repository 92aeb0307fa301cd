"""OpenTelemetry tracing of requests, pipeline stages and job items, off unless configured.

Off (the default) every helper here is a shared no-op: no OpenTelemetry module is imported
and a stage costs one function call. ``configure(endpoint)`` (``AVSERVE_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``, read by ``avserve serve`` and ``avserve worker``) imports
the SDK and the OTLP/HTTP exporter and installs them; ``use_provider`` plugs in any tracer
provider (tests use the SDK's in-memory exporter).

Span tree of one classify request: the server span (``POST /v1/classify``) -> ``fetch``
(URL input) and the pipeline stages (``probe``, ``glance_decode``, ``glance_net`` or
``saliency``, ``clip_decode``, ``heavy_net`` -> ``batch_wait``, ``batch_run``), ``fusion``.
A job: the server span of ``POST /v1/jobs`` -> ``jobs.enqueue`` (producer) -> W3C
``traceparent`` in every stream entry -> the worker's ``job.item`` (consumer) -> the same
stages. Every span carries ``avserve.request_id``; the entry carries the request id too, so a
worker's log lines name the request that submitted the job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

# Set by the HTTP middleware (and by a worker for the item it processes): log lines and spans
# carry it.
request_id_var: ContextVar[str | None] = ContextVar("avserve_request_id", default=None)

REQUEST_ID_ATTR = "avserve.request_id"
SpanKindName = Literal["internal", "server", "client", "producer", "consumer"]


class SpanLike(Protocol):
    """What callers may do with the span they are handed (an OTel span, or the no-op one)."""

    def set_attribute(self, key: str, value: Any) -> None: ...

    def update_name(self, name: str) -> None: ...


class _NullSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass


NULL_SPAN = _NullSpan()
_OFF = contextlib.nullcontext(NULL_SPAN)  # reusable: every disabled span is this object
_tracer: Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def use_provider(provider: TracerProvider | None) -> None:
    """Trace through ``provider`` from now on (None: tracing off again)."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("avserve")


def traces_endpoint(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector base URL (``http://collector:4318``)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def configure(endpoint: str | None, *, service_name: str) -> bool:
    """Export spans to the OTLP/HTTP collector at ``endpoint``; no endpoint, no tracing.

    Imports the SDK only here, so a process that traces nothing never loads it.
    ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and
    ``OTEL_EXPORTER_OTLP_HEADERS`` keep their usual meaning.
    """
    if not endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint(endpoint)))
    )
    trace.set_tracer_provider(provider)  # libraries' own instrumentation joins the same traces
    use_provider(provider)
    return True


def _attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in (attrs or {}).items() if v is not None}
    rid = request_id_var.get()
    if rid:
        out[REQUEST_ID_ATTR] = rid
    return out


def _kind(kind: SpanKindName) -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind[kind.upper()]


def span(
    name: str, attrs: Mapping[str, Any] | None = None, *, kind: SpanKindName = "internal"
) -> contextlib.AbstractContextManager[SpanLike]:
    """A child span of the current one for the ``with`` block (no-op when tracing is off)."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, kind=_kind(kind), attributes=_attributes(attrs))


def record_span(
    name: str, start_mono: float, end_mono: float, attrs: Mapping[str, Any] | None = None
) -> None:
    """A finished child span from ``time.monotonic()`` stamps (work timed elsewhere, e.g. a
    clip's wait in the batcher, which ends in the batcher's task, not the caller's)."""
    if _tracer is None:
        return
    now_mono, now_ns = time.monotonic(), time.time_ns()
    s = _tracer.start_span(
        name,
        attributes=_attributes(attrs),
        start_time=now_ns - int((now_mono - start_mono) * 1e9),
    )
    s.end(end_time=now_ns - int((now_mono - end_mono) * 1e9))


def server_span(
    method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
) -> contextlib.AbstractContextManager[SpanLike]:
    """The span of one HTTP request, continuing the caller's trace when it sent one."""
    if _tracer is None:
        return _OFF
    from opentelemetry import propagate

    carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    return _tracer.start_as_current_span(
        method,  # renamed to "<method> <route>" once routed (finish_server_span)
        context=propagate.extract(carrier),
        kind=_kind("server"),
        attributes=_attributes({"http.request.method": method, "url.path": path}),
    )


def finish_server_span(span_: SpanLike, method: str, route: str, status: int) -> None:
    """Name the request's span after its route template and record the response status."""
    if _tracer is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span_.update_name(f"{method} {route}")
    span_.set_attribute("http.route", route)
    span_.set_attribute("http.response.status_code", status)
    if status >= 500 and hasattr(span_, "set_status"):
        span_.set_status(Status(StatusCode.ERROR))


def entry_fields() -> dict[str, str]:
    """Fields a stream entry carries to the worker: the W3C trace context of the current span
    (tracing on) and the request id."""
    out: dict[str, str] = {}
    if _tracer is not None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        TraceContextTextMapPropagator().inject(out)
    rid = request_id_var.get()
    if rid:
        out["request_id"] = rid
    return out


@contextlib.contextmanager
def consumer_span(
    name: str, fields: Mapping[str, str], attrs: Mapping[str, Any] | None = None
) -> Iterator[SpanLike]:
    """Work on one stream entry: the request id and the trace it was submitted under are
    restored from ``fields`` (what ``entry_fields`` wrote) for the ``with`` block."""
    rid = fields.get("request_id")
    token = request_id_var.set(rid) if rid else None
    try:
        if _tracer is None:
            yield NULL_SPAN
            return
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(dict(fields))
        with _tracer.start_as_current_span(
            name, context=parent, kind=_kind("consumer"), attributes=_attributes(attrs)
        ) as s:
            yield s
    finally:
        if token is not None:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute ("-" outside a request) for plain-text
    log formats (``avserve worker``'s); the JSON formatter reads the context itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or "-"
        return True


def url_host(url: str) -> str | None:
    """The host of ``url`` for a span attribute (never the query: it may be a credential)."""
    try:
        return urlsplit(url).hostname
    except ValueError:  # not a URL the fetcher accepts either; it reports that itself
        return None


def log_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the current span for a log line ({} when none)."""
    if _tracer is None:
        return {}
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(ctx.trace_id),
        "span_id": trace.format_span_id(ctx.span_id),
    }
