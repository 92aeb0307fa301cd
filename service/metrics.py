"""Prometheus metrics for one service instance.

Names follow ``avserve_<subsystem>_<name>[_<unit>][_total]``: ``http`` (the gateway's
requests), ``pipeline`` (stages of one video), ``batcher`` (the dynamic batcher in front of
the heavy model), plus ``avserve_model_info``; the job queue's ``avserve_jobs_*`` live in
``service.queue.metrics``. A unit suffix is used only where the value has that unit (ratios
end in ``_ratio``); lanes are labelled ``lane`` in the batcher and the job queue alike.
docs/metrics.md lists them all.

Every ``Metrics`` owns its own ``CollectorRegistry`` (never the process-global default), so
tests can build several apps in one process and a worker can expose its own set.

Who observes what:
- the HTTP middleware: requests, request latency (both by status), in-flight requests,
  errors by code;
- the dynamic batcher: batch size, clip and batch counts, queue depth by lane, queue wait;
- the pipeline: per-stage durations and errors, decode time / video duration, audio-absent
  count, abstentions.
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
            "avserve_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "avserve_http_request_duration_seconds",
            "HTTP request latency by route template, method and status code.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "avserve_http_requests_in_flight",
            "Work requests (classify, job submission) admitted and not yet answered.",
            registry=r,
        )
        self.errors = Counter(
            "avserve_http_errors",
            "Errors returned to clients, by stable error code.",
            ["code"],
            registry=r,
        )
        self.stage_duration = Histogram(
            "avserve_pipeline_stage_duration_seconds",
            "Pipeline stage durations (fetch, probe, glance_decode, glance_net, clip_decode, heavy_net).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.stage_errors = Counter(
            "avserve_pipeline_stage_errors",
            "Pipeline stages that ended in an error, by stage and error code "
            "(code timeout on a decode stage: a decode timeout).",
            ["stage", "code"],
            registry=r,
        )
        self.batch_size = Histogram(
            "avserve_batcher_batch_size",
            "Clips per executed heavy-model batch.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.inference_count = Counter(
            "avserve_batcher_clips",
            "Clips run through the heavy model (clips / batches = mean batch size).",
            ["model"],
            registry=r,
        )
        self.exec_count = Counter(
            "avserve_batcher_batches",
            "Heavy-model batch executions.",
            ["model"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "avserve_batcher_queue_depth",
            "Clips waiting in the dynamic batcher, by priority lane (interactive, batch).",
            ["model", "lane"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "avserve_batcher_queue_wait_seconds",
            "Time a clip waited in the batcher before its batch started.",
            ["model"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.decode_ratio = Histogram(
            "avserve_pipeline_decode_realtime_ratio",
            "Decode wall time divided by the video's duration, per classified video "
            "(below 1: decoding is faster than real time).",
            buckets=_RATIO_BUCKETS,
            registry=r,
        )
        self.videos = Counter(
            "avserve_pipeline_videos",
            "Videos classified.",
            registry=r,
        )
        self.audio_absent = Counter(
            "avserve_pipeline_audio_absent",
            "Videos classified without audio (no audio stream, or digital silence).",
            registry=r,
        )
        self.abstentions = Counter(
            "avserve_pipeline_abstentions",
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

    def observe_stage_error(self, stage: str, code: str) -> None:
        self.stage_errors.labels(stage=stage, code=code).inc()

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

    def set_queue_depth(self, model: str, lane: str, depth: int) -> None:
        self.queue_depth.labels(model=model, lane=lane).set(depth)

    # -- gateway hooks --------------------------------------------------------------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        code = str(status)
        self.requests.labels(route=route, method=method, status=code).inc()
        self.request_duration.labels(route=route, method=method, status=code).observe(
            max(seconds, 0.0)
        )

    def set_model_info(self, name: str, version: str, runtime: str, device: str) -> None:
        self.model_info.labels(name=name, version=version, runtime=runtime, device=device).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of this instance's registry."""
        return generate_latest(self.registry)
