"""Processing one job item: begin → run the processor → report once → acknowledge.

Typed input failures (``url_forbidden``, ``undecodable`` ...) are final. Retryable ones
(``worker_crashed``, ``timeout``, unexpected exceptions: see ``QueueConfig.retryable_codes``)
give the entry back with exponential backoff until ``max_deliveries``, then the item is
dead-lettered and reported failed with its last error. Reporting goes through the backend's
idempotent ``finish``: a redelivered item that was processed twice is reported once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from service import tracing
from service.errors import AvserveError
from service.queue.backend import BackendUnavailable, Delivery, FinishOutcome, JobBackend
from service.queue.config import QueueConfig
from service.queue.consumer import Backoff
from service.queue.metrics import WorkerMetrics
from service.redact import redact_text, redact_url
from service.schemas import ClassifyOptions

log = logging.getLogger(__name__)
T = TypeVar("T")

# (url, options) -> ClassifyResult as JSON. Raises AvserveError for typed per-item failures.
JobProcessor = Callable[[str, ClassifyOptions], Awaitable[dict[str, Any]]]


async def persist(
    op: Callable[[], Awaitable[T]],
    metrics: WorkerMetrics | None = None,
    max_backoff_s: float = 5.0,
) -> T:
    """Retry a store operation until the store answers (the caller's cancellation ends it).

    Used for reports and acks: the work is done, giving up would only cost a redelivery.
    """
    backoff = Backoff(max_s=max_backoff_s)
    while True:
        try:
            return await op()
        except BackendUnavailable as exc:
            if metrics is not None:
                metrics.backend_errors.inc()
            log.warning("queue store unavailable, retrying: %s", exc)
            await backoff.sleep()


class ItemHandler:
    """``DeliveryHandler`` for item streams."""

    def __init__(
        self,
        backend: JobBackend,
        config: QueueConfig,
        processor: JobProcessor,
        *,
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend
        self._config = config
        self._processor = processor
        self.metrics = metrics
        self._clock = clock

    async def _persist(self, op: Callable[[], Awaitable[T]]) -> T:
        return await persist(op, self.metrics, self._config.reconnect_backoff_max_s)

    def _count(
        self, d: Delivery, outcome: str, seconds: float | None = None, code: str | None = None
    ) -> None:
        if self.metrics is None:
            return
        lane = self.metrics.lane(d.stream)
        self.metrics.items.labels(lane, outcome).inc()
        if seconds is not None:
            self.metrics.item_seconds.labels(lane, outcome).observe(seconds)
        if code is not None:
            self.metrics.item_errors.labels(lane, code).inc()

    async def handle(self, consumer: str, delivery: Delivery) -> None:
        # The submitting request's trace and request id (carried in the entry) cover the item:
        # its pipeline spans and log lines join the gateway's.
        d = delivery
        attrs = {
            "messaging.system": self._backend.kind,
            "messaging.destination.name": d.stream,
            "messaging.message.id": d.entry_id,
            "messaging.message.delivery_count": d.deliveries,
            "avserve.job_id": d.fields.get("job"),
            "avserve.item": d.fields.get("item"),
            "avserve.worker": consumer,
        }
        with tracing.consumer_span("job.item", d.fields, attrs):
            await self._handle(consumer, d)

    async def _handle(self, consumer: str, delivery: Delivery) -> None:
        d = delivery
        if not await self._well_formed(d):
            return
        begin = await self._persist(lambda: self._backend.begin(d, self._clock()))
        if not begin.proceed:
            # Already final (cancelled, or reported by an earlier delivery) or expired.
            await self._persist(lambda: self._backend.ack(d))
            self._count(d, "skipped")
            return
        t0 = time.monotonic()
        error: dict[str, str]
        try:
            options = ClassifyOptions.model_validate_json(begin.options_json or "{}")
            result = await asyncio.wait_for(
                self._processor(d.url, options), self._config.item_timeout_s
            )
            json.dumps(result)  # a non-JSON result is a processor bug: fail here, not in the store
        except AvserveError as exc:
            error, retryable = exc.to_dict(), exc.code in self._config.retryable_codes
        except TimeoutError:
            error = {"code": "timeout", "message": "processing the item took too long"}
            retryable = "timeout" in self._config.retryable_codes
        except Exception as exc:
            log.exception("processor failed on %s", redact_url(d.url))
            message = redact_text(f"{type(exc).__name__}: {exc}")
            error = {"code": "internal", "message": message[:500]}
            retryable = "internal" in self._config.retryable_codes
        else:
            record = self._record(consumer, d, t0, result=result)
            outcome = await self._persist(
                lambda: self._backend.finish(d, "done", record, self._clock())
            )
            self._count(
                d, "duplicate" if outcome == FinishOutcome.DUPLICATE else "done", _since(t0)
            )
            return
        seconds = _since(t0)
        if retryable and d.deliveries < self._config.max_deliveries:
            delay = min(
                self._config.retry_backoff_max_s,
                self._config.retry_backoff_s * 2 ** (d.deliveries - 1),
            )
            await self._persist(
                lambda: self._backend.release(
                    consumer, d, available_in_s=delay, deliveries=d.deliveries, error=error
                )
            )
            self._count(d, "retry", seconds, code=error["code"])
            return
        record = self._record(consumer, d, t0, error=error)
        await self._persist(
            lambda: self._backend.finish(d, "failed", record, self._clock(), dead_letter=retryable)
        )
        self._count(d, "dead_lettered" if retryable else "failed", seconds, code=error["code"])

    async def exhausted(self, consumer: str, delivery: Delivery) -> None:
        """Delivered too often without a report (workers killed or stuck on it)."""
        d = delivery
        if not await self._well_formed(d):
            return
        record = {"finished_at": self._clock(), "deliveries": d.deliveries - 1}
        await self._persist(
            lambda: self._backend.finish(d, "failed", record, self._clock(), dead_letter=True)
        )
        self._count(d, "dead_lettered", code="worker_crashed")  # no worker finished it

    async def _well_formed(self, d: Delivery) -> bool:
        """Entries not written by ``submit`` (hand-made XADDs) are dropped, not retried."""
        if "job" in d.fields and d.fields.get("item", "").isdigit():
            return True
        log.error("dropping malformed entry %s of %s: %s", d.entry_id, d.stream, dict(d.fields))
        await self._persist(lambda: self._backend.ack(d))
        self._count(d, "skipped")
        return False

    def _record(
        self,
        consumer: str,
        d: Delivery,
        t0: float,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "finished_at": self._clock(),
            "deliveries": d.deliveries,
            "worker": consumer,
            "duration_ms": round(_since(t0) * 1000, 3),
        }
        if result is not None:
            record["result"] = result
        if error is not None:
            record["error"] = error
        return record


def _since(t0: float) -> float:
    return time.monotonic() - t0
