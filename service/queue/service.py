"""``JobService``: what the /v1/jobs routes call (submit, get, results, cancel).

``build_job_service(config, processor)`` picks the backend: Redis Streams when
``config.redis_url`` is set, else the in-process queue with an embedded worker (same API and
semantics, not durable). Lifecycle: ``await start()`` ... ``await stop(grace_s)``, or
``async with``.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from service import tracing
from service.errors import AvserveError
from service.queue.backend import (
    ANONYMOUS,
    TERMINAL_JOB_STATES,
    BackendUnavailable,
    JobBackend,
    JobRecord,
    NewJob,
)
from service.queue.callbacks import CallbackSender
from service.queue.config import QueueConfig
from service.queue.items import JobProcessor
from service.queue.memory_backend import MemoryBackend
from service.queue.metrics import StatsCache, WorkerMetrics
from service.queue.schemas import JobCreate, JobOut, item_out, job_out
from service.queue.worker import Worker

_JOB_ID = re.compile(r"[0-9a-f]{32}")
_RESULTS_PAGE = 500
MAX_ITEMS_PAGE = 1000
SUBMIT_ITEMS_PAGE = 100  # items listed in the answer to a submission (then items_next)
# Item offsets are bounded in the API schema: past this no job has items (max_items_per_job
# is capped at it too), and a huge offset must never reach Redis (LRANGE takes int64).
MAX_ITEM_OFFSET = 1_000_000


def is_job_id(job_id: str) -> bool:
    """True for the ids this service hands out (32 lowercase hex digits, nothing else)."""
    return _JOB_ID.fullmatch(job_id) is not None


class JobService:
    def __init__(
        self,
        config: QueueConfig,
        backend: JobBackend,
        processor: JobProcessor | None,
        *,
        sender: CallbackSender | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.backend = backend
        self._sender = sender or CallbackSender(config)
        self._clock = clock
        self._stats = StatsCache(backend, config.metrics_interval_s)
        self.worker: Worker | None = None
        if config.runs_embedded_worker and processor is not None:
            self.worker = Worker(config, backend, processor, sender=self._sender)
        if registry is not None:
            self.register_metrics(registry)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        # Keep serving when the store is down: submits answer 503 until it is back, and
        # consumer groups are re-created on first use.
        with contextlib.suppress(BackendUnavailable):
            await self.backend.start()
        self._stats.start()
        if self.worker is not None:
            await self.worker.start()

    async def stop(self, grace_s: float | None = None) -> None:
        if self.worker is not None:
            await self.worker.stop(grace_s)
        await self._stats.stop()
        await self._sender.aclose()
        await self.backend.close()

    async def __aenter__(self) -> JobService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Queue-wide gauges/counters, plus the embedded worker's own instruments."""
        registry.register(self._stats.collector(self.config))
        if self.worker is not None:
            self.worker.use_metrics(WorkerMetrics(registry, self.config))

    def info(self) -> dict[str, Any]:
        """What /v1/models-style endpoints report about batch jobs."""
        c = self.config
        return {
            "backend": self.backend.kind,
            "durable": self.backend.durable,
            "embedded_worker": self.worker is not None,
            "lanes": ["high", "batch"],
            "max_items_per_job": c.max_items_per_job,
            "max_queue_length": c.max_queue_length,
            "result_ttl_s": c.result_ttl_s,
            "max_deliveries": c.max_deliveries,
        }

    # -- API ---------------------------------------------------------------------------
    async def submit(
        self, body: JobCreate, idempotency_key: str | None, *, principal: str = ANONYMOUS
    ) -> tuple[JobOut, bool]:
        """Accept a job for ``principal``; returns it and whether it was created (False: an
        idempotent replay of the same principal's earlier submit)."""
        if len(body.items) > self.config.max_items_per_job:
            raise AvserveError(
                f"a job may list at most {self.config.max_items_per_job} items",
                code="too_large",
            )
        if idempotency_key is not None and not (
            0 < len(idempotency_key) <= 255 and idempotency_key.isprintable()
        ):
            raise AvserveError(
                "Idempotency-Key must be 1-255 printable characters", code="invalid_request"
            )
        if body.callback_url is not None:
            await self._sender.check(body.callback_url)
        now = self._clock()
        stream = self.config.stream_for_lane(body.priority)
        attrs = {
            "messaging.system": self.backend.kind,
            "messaging.destination.name": stream,
            "messaging.batch.message_count": len(body.items),
        }
        # The entries carry this span's context: the worker's item spans become its children.
        with tracing.span("jobs.enqueue", attrs, kind="producer") as span:
            outcome = await self.backend.submit(
                NewJob(
                    job_id=uuid.uuid4().hex,
                    lane=body.priority,
                    stream=stream,
                    urls=tuple(item.url for item in body.items),
                    options_json=body.classify_options().model_dump_json(),
                    callback_url=body.callback_url,
                    body_hash=body.body_hash(),
                    idempotency_key=idempotency_key,
                    created_at=now,
                    owner=principal,
                    entry_fields=tracing.entry_fields(),
                )
            )
            span.set_attribute("avserve.job_id", outcome.job_id)
        # The answer lists the job's items (first page, like GET's default), not an empty page.
        first_page = min(len(body.items), SUBMIT_ITEMS_PAGE)
        job = await self.get(outcome.job_id, limit=first_page, principal=principal)
        return job, outcome.created

    async def get(
        self, job_id: str, *, offset: int = 0, limit: int = 100, principal: str = ANONYMOUS
    ) -> JobOut:
        """Status and progress, plus items ``[offset, offset+limit)`` (limit 0: none)."""
        if not 0 <= offset <= MAX_ITEM_OFFSET or not 0 <= limit <= MAX_ITEMS_PAGE:
            raise AvserveError(
                f"offset must be within 0..{MAX_ITEM_OFFSET} and limit within 0..{MAX_ITEMS_PAGE}",
                code="invalid_request",
            )
        job = await self._job(job_id, principal)
        items = await self.backend.get_items(job_id, offset, offset + limit) if limit else None
        return job_out(
            job, durable=self.backend.durable, now=self._clock(), items=items, offset=offset
        )

    async def open_results(
        self, job_id: str, *, principal: str = ANONYMOUS
    ) -> AsyncIterator[bytes]:
        """Check the job exists (404 before any byte is sent), then stream its final items as
        JSON lines in item order."""
        job = await self._job(job_id, principal)

        async def lines() -> AsyncIterator[bytes]:
            for start in range(0, job.total, _RESULTS_PAGE):
                page = await self.backend.get_items(job_id, start, start + _RESULTS_PAGE)
                for item in page:
                    if item.record is not None:
                        yield item_out(item).model_dump_json().encode() + b"\n"

        return lines()

    async def cancel(self, job_id: str, *, principal: str = ANONYMOUS) -> JobOut:
        """Cancel every item that has not started; running items finish normally."""
        await self._job(job_id, principal)  # another principal's job: 404, untouched
        job = await self.backend.cancel(job_id, self._clock())
        if job is None:
            raise AvserveError(f"no job {job_id}", code="job_not_found")
        if job.status in TERMINAL_JOB_STATES - {"cancelled"}:
            raise AvserveError(f"job {job_id} already ended ({job.status})", code="conflict")
        return job_out(job, durable=self.backend.durable, now=self._clock())

    async def _job(self, job_id: str, principal: str) -> JobRecord:
        if not is_job_id(job_id):
            raise AvserveError("no such job", code="job_not_found")
        job = await self.backend.get_job(job_id)
        # Another principal's job answers exactly like an unknown one: its existence is not
        # revealed either.
        if job is None or job.owner != principal:
            raise AvserveError(f"no job {job_id} (unknown or expired)", code="job_not_found")
        return job


def build_job_service(
    config: QueueConfig,
    processor: JobProcessor | None,
    *,
    registry: CollectorRegistry | None = None,
    sender: CallbackSender | None = None,
) -> JobService:
    """The gateway's entry point: Redis when ``config.redis_url`` is set, else in-process."""
    backend: JobBackend
    if config.redis_url is not None:
        from service.queue.redis_backend import RedisBackend

        backend = RedisBackend(config)
    else:
        backend = MemoryBackend(config)
    return JobService(config, backend, processor, sender=sender, registry=registry)
