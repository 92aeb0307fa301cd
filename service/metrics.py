"""Prometheus metrics for one service instance (names prefixed ``avserve_``).

Every ``Metrics`` owns its own ``CollectorRegistry`` (never the process-global default), so
tests can build several apps in one process and a worker can expose its own set.

Who observes what:
- the HTTP middleware: requests, request latency, in-flight requests, errors by code;
- the dynamic batcher: batch size, inference/execution counts, queue depth, queue wait;
- the pipeline: per-stage durations, decode seconds per video second, audio-absent count.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Stages the pipeline reports; free-form names are accepted too, these are the documented ones.
STAGES = ("fetch", "probe", "glance_decode", "glance_net", "clip_decode", "heavy_net")

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_RATIO_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """All metric families of one instance, plus small typed methods the layers call."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "avserve_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "avserve_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "avserve_in_flight_requests",
            "Work requests (classify, job submission) admitted and not yet answered.",
            registry=r,
        )
        self.errors = Counter(
            "avserve_errors",
            "Errors returned to clients, by stable error code.",
            ["code"],
            registry=r,
        )
        self.stage_duration = Histogram(
            "avserve_stage_duration_seconds",
            "Pipeline stage durations (fetch, probe, glance_decode, glance_net, clip_decode, heavy_net).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "avserve_batch_size",
            "Clips per executed heavy-model batch.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.inference_count = Counter(
            "avserve_inference_count",
            "Clips run through the heavy model (inference_count / exec_count = mean batch).",
            ["model"],
            registry=r,
        )
        self.exec_count = Counter(
            "avserve_inference_exec_count",
            "Heavy-model batch executions.",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "avserve_queue_depth",
            "Clips waiting in the dynamic batcher, by priority lane.",
            ["model", "priority"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "avserve_queue_wait_seconds",
            "Time a clip waited in the batcher before its batch started.",
            ["model"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.decode_ratio = Histogram(
            "avserve_decode_seconds_per_video_second",
            "Decode wall time divided by the video's duration, per classified video.",
            buckets=_RATIO_BUCKETS,
            registry=r,
        )
        self.videos = Counter(
            "avserve_videos",
            "Videos classified.",
            registry=r,
        )
        self.audio_absent = Counter(
            "avserve_audio_absent",
            "Videos classified without audio (no audio stream, or digital silence).",
            registry=r,
        )
        self.abstentions = Counter(
            "avserve_abstentions",
            "Head answers that were 'unknown' (the model recognised none of its classes).",
            ["model", "head", "reason"],
            registry=r,
        )
        self.model_info = Gauge(
            "avserve_model_info",
            "Loaded model packages (value 1): name, version, runtime and device.",
            ["name", "version", "runtime", "device"],
            registry=r,
        )

    # -- pipeline hooks -------------------------------------------------------------------------
    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_duration.labels(stage=stage).observe(max(seconds, 0.0))

    def observe_video(self, duration_s: float, decode_s: float, audio_present: bool) -> None:
        """One classified video: its duration, the decode wall time spent on it, audio or not."""
        self.videos.inc()
        if duration_s > 0:
            self.decode_ratio.observe(max(decode_s, 0.0) / duration_s)
        if not audio_present:
            self.audio_absent.inc()

    def observe_verdict(self, model: str, head: str, reason: str | None) -> None:
        """One head's verdict: counted when the head abstained (reason set)."""
        if reason is not None:
            self.abstentions.labels(model=model, head=head, reason=reason).inc()

    def error(self, code: str) -> None:
        self.errors.labels(code=code).inc()

    # -- batcher hooks --------------------------------------------------------------------------
    def observe_batch(self, model: str, size: int, queue_waits_s: list[float]) -> None:
        self.batch_size.labels(model=model).observe(size)
        self.inference_count.labels(model=model).inc(size)
        self.exec_count.labels(model=model).inc()
        hist = self.queue_wait.labels(model=model)
        for w in queue_waits_s:
            hist.observe(max(w, 0.0))

    def set_queue_depth(self, model: str, priority: str, depth: int) -> None:
        self.queue_depth.labels(model=model, priority=priority).set(depth)

    # -- gateway hooks --------------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.request_duration.labels(route=route, method=method).observe(max(seconds, 0.0))

    def set_model_info(self, name: str, version: str, runtime: str, device: str) -> None:
        self.model_info.labels(name=name, version=version, runtime=runtime, device=device).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of this instance's registry."""
        return generate_latest(self.registry)
