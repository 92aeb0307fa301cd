"""Prometheus metrics of the job queue (``avserve_jobs_*``), on a registry the caller passes in.

Two kinds: per-process instruments updated by workers (item latency, outcomes, errors by
code, redeliveries), and queue-wide numbers read from the backend by a ``StatsCache`` every
few seconds and exposed by ``QueueStatsCollector`` (queue depth, consumer-group lag and
pending, dead letters, job/item totals by state). ``avserve_jobs_queue_lag{lane="batch"}``
matches what the KEDA ``redis-streams`` scaler reads as ``lagCount``. Lanes are labelled
``lane``, as in the batcher's ``avserve_batcher_queue_depth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.queue.backend import BackendUnavailable, JobBackend, QueueStats
from service.queue.config import QueueConfig

log = logging.getLogger(__name__)

_FINAL_STATES = ("done", "failed", "cancelled")


def lane_labels(config: QueueConfig) -> dict[str, str]:
    """Stream name -> short ``lane`` label value."""
    return {
        config.high_stream: "high",
        config.batch_stream: "batch",
        config.callback_stream: "callbacks",
    }


class WorkerMetrics:
    """What one worker process observes while processing items."""

    def __init__(self, registry: CollectorRegistry, config: QueueConfig) -> None:
        self._lanes = lane_labels(config)
        self.item_seconds = Histogram(
            "avserve_jobs_item_duration_seconds",
            "Processor time per item delivery, by lane and outcome.",
            ["lane", "outcome"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
        )
        self.items = Counter(
            "avserve_jobs_items_processed",
            "Item deliveries handled by this worker, by outcome "
            "(done, failed, retry, dead_lettered, duplicate, skipped).",
            ["lane", "outcome"],
            registry=registry,
        )
        self.item_errors = Counter(
            "avserve_jobs_item_errors",
            "Failed item deliveries, by lane and error code (retried ones included).",
            ["lane", "code"],
            registry=registry,
        )
        self.redeliveries = Counter(
            "avserve_jobs_item_redeliveries",
            "Items this worker received that had been delivered before.",
            ["lane"],
            registry=registry,
        )
        self.inflight = Gauge(
            "avserve_jobs_items_in_flight", "Items being processed now.", registry=registry
        )
        self.backend_errors = Counter(
            "avserve_jobs_backend_errors",
            "Queue-store operations that failed (Redis unreachable, read-only, ...).",
            registry=registry,
        )
        self.callbacks = Counter(
            "avserve_jobs_callbacks",
            "Completion callbacks by outcome (delivered, failed, skipped).",
            ["outcome"],
            registry=registry,
        )

    def lane(self, stream: str) -> str:
        return self._lanes.get(stream, stream)


class QueueStatsCollector(Collector):
    """Exposes the latest ``QueueStats`` snapshot; cheap to scrape (no I/O in ``collect``)."""

    def __init__(self, source: Callable[[], QueueStats | None], config: QueueConfig) -> None:
        self._source = source
        self._lanes = lane_labels(config)

    def collect(self) -> Iterator[Metric]:
        stats = self._source()
        if stats is None:
            return
        length = GaugeMetricFamily(
            "avserve_jobs_queue_depth",
            "Unfinished entries (lag + pending) per lane.",
            labels=["lane"],
        )
        lag = GaugeMetricFamily(
            "avserve_jobs_queue_lag",
            "Entries never delivered to the consumer group (KEDA lagCount).",
            labels=["lane"],
        )
        pending = GaugeMetricFamily(
            "avserve_jobs_queue_pending", "Delivered entries not acknowledged yet.", labels=["lane"]
        )
        entries = GaugeMetricFamily(
            "avserve_jobs_stream_entries", "Stream length (XLEN) per lane.", labels=["lane"]
        )
        consumers = GaugeMetricFamily(
            "avserve_jobs_queue_consumers",
            "Consumers in the group: live workers (each joins on every heartbeat), plus dead "
            "ones still holding pending entries.",
            labels=["lane"],
        )
        for s in stats.streams:
            lane = self._lanes.get(s.stream, s.stream)
            length.add_metric([lane], s.backlog)
            lag.add_metric([lane], s.lag)
            pending.add_metric([lane], s.pending)
            entries.add_metric([lane], s.entries)
            consumers.add_metric([lane], s.consumers)
        yield from (length, lag, pending, entries, consumers)
        yield GaugeMetricFamily(
            "avserve_jobs_dead_letter_entries",
            "Entries in the dead-letter stream.",
            value=stats.dead_letter,
        )
        yield GaugeMetricFamily(
            "avserve_jobs_workers_alive",
            "Workers whose heartbeat has not expired.",
            value=stats.workers_alive,
        )
        c = stats.counters
        yield CounterMetricFamily(
            "avserve_jobs_submitted", "Jobs accepted, queue-wide.", value=c.get("jobs_submitted", 0)
        )
        jobs = CounterMetricFamily(
            "avserve_jobs_finished", "Jobs that ended, by final state.", labels=["state"]
        )
        items = CounterMetricFamily(
            "avserve_jobs_items_finished", "Items that reached a final state.", labels=["state"]
        )
        for state in _FINAL_STATES:
            jobs.add_metric([state], c.get(f"jobs_{state}", 0))
            items.add_metric([state], c.get(f"items_{state}", 0))
        yield jobs
        yield items
        yield CounterMetricFamily(
            "avserve_jobs_items_submitted",
            "Items accepted, queue-wide.",
            value=c.get("items_submitted", 0),
        )
        yield CounterMetricFamily(
            "avserve_jobs_items_dead_lettered",
            "Items moved to the dead-letter stream.",
            value=c.get("items_dead_lettered", 0),
        )
        finished = sum(c.get(f"jobs_{s}", 0) for s in _FINAL_STATES)
        yield GaugeMetricFamily(
            "avserve_jobs_active",
            "Jobs queued or running.",
            value=max(0, c.get("jobs_submitted", 0) - finished),
        )


class StatsCache:
    """Keeps the latest ``QueueStats``; refreshed by a background task (start/stop)."""

    def __init__(self, backend: JobBackend, interval_s: float) -> None:
        self._backend = backend
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.latest: QueueStats | None = None

    async def refresh(self) -> QueueStats | None:
        try:
            self.latest = await self._backend.stats()
        except BackendUnavailable as exc:
            log.warning("queue stats unavailable: %s", exc)
        return self.latest

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def collector(self, config: QueueConfig) -> QueueStatsCollector:
        return QueueStatsCollector(lambda: self.latest, config)
