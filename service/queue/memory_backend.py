"""In-process job backend: Redis Streams semantics in plain Python, minus durability.

Used when no ``REDIS_URL`` is configured so the embedded gateway still accepts jobs. Every
method runs to completion without awaiting in the middle, which makes each one atomic on
the event loop, the way the Redis backend's Lua scripts are atomic on the server. Jobs,
results and queued items are lost when the process exits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.queue.backend import (
    TERMINAL_JOB_STATES,
    BeginOutcome,
    Delivery,
    FinalItemState,
    FinishOutcome,
    ItemRecord,
    ItemState,
    JobRecord,
    NewJob,
    QueueStats,
    ReclaimResult,
    StreamStats,
    SubmitOutcome,
    crash_error,
    idempotency_conflict,
    queue_full,
    quota_exceeded,
)
from service.queue.config import QueueConfig
from service.queue.memory_state import MemJob, MemPending, MemStream

# ---- the backend -----------------------------------------------------------------------------


class MemoryBackend:
    """``JobBackend`` on dicts and deques inside one event loop."""

    kind = "memory"
    durable = False

    def __init__(self, config: QueueConfig, *, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._clock = clock
        self._streams: dict[str, MemStream] = {
            name: MemStream()
            for name in (config.high_stream, config.batch_stream, config.callback_stream)
        }
        self._dead: deque[dict[str, str]] = deque(maxlen=config.dead_letter_maxlen)
        self._jobs: dict[str, MemJob] = {}
        # (owner, key) -> (job, hash, expiry): one principal's keys never match another's
        self._idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}
        self._counters: Counter[str] = Counter()
        self._workers: dict[str, float] = {}
        self._changed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- helpers -----------------------------------------------------------------------
    def _job(self, job_id: str) -> MemJob | None:
        job = self._jobs.get(job_id)
        if job is not None and job.expires_at <= self._clock():
            del self._jobs[job_id]
            return None
        return job

    def _refresh_ttl(self, job: MemJob) -> None:
        job.expires_at = self._clock() + self._config.result_ttl_s

    def _record(self, job: MemJob) -> JobRecord:
        return JobRecord(
            job_id=job.job_id,
            status=job.status,
            lane=job.lane,
            total=job.total,
            done=job.done,
            failed=job.failed,
            cancelled=job.cancelled,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            options_json=job.options_json,
            callback_url=job.callback_url,
            callback_status=job.callback_status,
            callback_attempts=job.callback_attempts,
            callback_error=job.callback_error,
            expires_in_s=max(0.0, job.expires_at - self._clock()),
            owner=job.owner,
        )

    def _complete_if_finished(self, job: MemJob, now: float) -> bool:
        if job.finished_at is not None or job.done + job.failed + job.cancelled < job.total:
            return False
        job.finished_at = now
        if job.status != "cancelled":
            job.status = "done" if job.done > 0 else "failed"
            self._counters[f"jobs_{job.status}"] += 1
        if job.callback_url:
            job.callback_status = "pending"
            self._streams[self._config.callback_stream].add({"job": job.job_id})
            self._changed.set()
        return True

    # -- gateway side ------------------------------------------------------------------
    async def submit(self, job: NewJob) -> SubmitOutcome:
        now_m = self._clock()
        key = None if job.idempotency_key is None else (job.owner, job.idempotency_key)
        if key is not None and key in self._idempotency:
            job_id, body_hash, expiry = self._idempotency[key]
            if expiry > now_m and self._job(job_id) is not None:
                if body_hash != job.body_hash:
                    raise idempotency_conflict()
                return SubmitOutcome(job_id, created=False)
        backlog = sum(
            len(self._streams[s].undelivered) + len(self._streams[s].pending)
            for s in self._config.item_streams
        )
        if backlog + len(job.urls) > self._config.max_queue_length:
            raise queue_full(backlog)
        owned = sum(
            j.total - j.done - j.failed - j.cancelled
            for j in self._jobs.values()
            if j.owner == job.owner and j.expires_at > now_m
        )
        quota = self._config.principal_quota
        if owned + len(job.urls) > quota:
            raise quota_exceeded(owned, quota)
        state = MemJob(
            job_id=job.job_id,
            lane=job.lane,
            urls=list(job.urls),
            options_json=job.options_json,
            callback_url=job.callback_url,
            created_at=job.created_at,
            updated_at=job.created_at,
            expires_at=now_m + self._config.result_ttl_s,
            owner=job.owner,
        )
        self._jobs[job.job_id] = state
        stream = self._streams[job.stream]
        for i, url in enumerate(job.urls):
            stream.add({**job.entry_fields, "job": job.job_id, "item": str(i), "url": url})
        if key is not None:
            self._idempotency[key] = (job.job_id, job.body_hash, state.expires_at)
        self._counters["jobs_submitted"] += 1
        self._counters["items_submitted"] += len(job.urls)
        self._changed.set()
        return SubmitOutcome(job.job_id, created=True)

    async def get_job(self, job_id: str) -> JobRecord | None:
        job = self._job(job_id)
        return None if job is None else self._record(job)

    async def get_items(self, job_id: str, start: int, stop: int) -> list[ItemRecord]:
        job = self._job(job_id)
        if job is None:
            return []
        out = []
        for i in range(max(0, start), min(stop, job.total)):
            record = job.items.get(i)
            state: ItemState
            if record is not None:
                state = record["state"]
            else:
                state = "running" if i in job.started else "queued"
            out.append(ItemRecord(i, job.urls[i], state, dict(record) if record else None))
        return out

    async def cancel(self, job_id: str, now: float) -> JobRecord | None:
        job = self._job(job_id)
        if job is None:
            return None
        if job.status in TERMINAL_JOB_STATES:
            return self._record(job)
        n = 0
        for i in range(job.total):
            if i not in job.items and i not in job.started:
                job.items[i] = {"state": "cancelled", "finished_at": now}
                n += 1
        job.cancelled += n
        job.status = "cancelled"
        job.updated_at = now
        self._counters["items_cancelled"] += n
        self._counters["jobs_cancelled"] += 1
        self._complete_if_finished(job, now)
        self._refresh_ttl(job)
        return self._record(job)

    # -- worker side -------------------------------------------------------------------
    async def read(
        self, consumer: str, streams: Sequence[str], count: int, block_s: float
    ) -> list[Delivery]:
        out = self._take(consumer, streams, count)
        if not out and block_s > 0:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), block_s)
            except TimeoutError:
                return []
            out = self._take(consumer, streams, count)
        return out

    def _take(self, consumer: str, streams: Sequence[str], count: int) -> list[Delivery]:
        out: list[Delivery] = []
        now = self._clock()
        for name in streams:
            stream = self._streams[name]
            stream.consumers.add(consumer)
            taken = 0
            while stream.undelivered and taken < count:
                entry_id = stream.undelivered.popleft()
                stream.pending[entry_id] = MemPending(consumer, now, 1)
                out.append(Delivery(name, entry_id, dict(stream.entries[entry_id]), 1))
                taken += 1
        return out

    async def begin(self, delivery: Delivery, now: float) -> BeginOutcome:
        job = self._job(delivery.job_id)
        if job is None:
            return BeginOutcome(False, reason="gone")
        if delivery.index in job.items:
            return BeginOutcome(False, reason="final")
        job.started.add(delivery.index)
        if job.status == "queued":
            job.status = "running"
            job.started_at = now
        job.updated_at = now
        self._refresh_ttl(job)
        return BeginOutcome(True, options_json=job.options_json)

    async def finish(
        self,
        delivery: Delivery,
        state: FinalItemState,
        record: Mapping[str, Any],
        now: float,
        *,
        dead_letter: bool = False,
    ) -> FinishOutcome:
        self._streams[delivery.stream].ack(delivery.entry_id)
        job = self._job(delivery.job_id)
        if job is None:
            return FinishOutcome.JOB_GONE
        idx = delivery.index
        if idx in job.items:
            return FinishOutcome.DUPLICATE
        final = dict(record)
        final["state"] = state
        if dead_letter and state == "failed" and "error" not in final:
            final["error"] = job.errors.get(idx) or crash_error(delivery.deliveries - 1)
        job.items[idx] = final
        setattr(job, state, getattr(job, state) + 1)
        job.updated_at = now
        self._counters[f"items_{state}"] += 1
        if dead_letter:
            self._counters["items_dead_lettered"] += 1
            self._dead.append(
                {
                    **delivery.fields,
                    "stream": delivery.stream,
                    "entry": delivery.entry_id,
                    "deliveries": str(delivery.deliveries),
                    "error": json.dumps(final.get("error")),
                }
            )
        self._refresh_ttl(job)
        completed = self._complete_if_finished(job, now)
        return FinishOutcome.JOB_COMPLETED if completed else FinishOutcome.RECORDED

    async def release(
        self,
        consumer: str,
        delivery: Delivery,
        *,
        available_in_s: float,
        deliveries: int,
        error: Mapping[str, str] | None = None,
    ) -> None:
        pending = self._streams[delivery.stream].pending.get(delivery.entry_id)
        if pending is None or pending.consumer != consumer:
            return
        idle = max(0.0, self._config.visibility_timeout_s - available_in_s)
        pending.delivered_at = self._clock() - idle
        pending.count = deliveries
        if "job" in delivery.fields and (job := self._job(delivery.job_id)) is not None:
            job.started.discard(delivery.index)
            if error is not None:
                job.errors[delivery.index] = dict(error)

    async def ack(self, delivery: Delivery) -> None:
        self._streams[delivery.stream].ack(delivery.entry_id)

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        now = self._clock()
        for d in deliveries:
            pending = self._streams[d.stream].pending.get(d.entry_id)
            if pending is not None and pending.consumer == consumer:
                pending.delivered_at = now

    async def reclaim(
        self, consumer: str, stream: str, min_idle_s: float, count: int, cursor: str = "0-0"
    ) -> ReclaimResult:
        s = self._streams[stream]
        now = self._clock()
        s.consumers.add(consumer)
        out: list[Delivery] = []
        for entry_id in sorted(s.pending, key=lambda e: int(e.split("-")[0])):
            if len(out) >= count:
                break
            p = s.pending[entry_id]
            if now - p.delivered_at >= min_idle_s:
                p.consumer, p.delivered_at, p.count = consumer, now, p.count + 1
                out.append(Delivery(stream, entry_id, dict(s.entries[entry_id]), p.count))
        return ReclaimResult(out, "0-0")

    async def finish_callback(
        self, delivery: Delivery, status: str, attempts: int, error: str | None
    ) -> None:
        job = self._job(delivery.job_id)
        if job is not None:
            job.callback_status = status
            job.callback_attempts = attempts
            job.callback_error = error
        self._streams[delivery.stream].ack(delivery.entry_id)

    # -- housekeeping ------------------------------------------------------------------
    async def heartbeat(self, consumer: str, ttl_s: float) -> None:
        self._workers[consumer] = self._clock() + ttl_s
        for s in self._streams.values():
            s.consumers.add(consumer)

    async def forget_consumer(self, consumer: str) -> None:
        self._workers.pop(consumer, None)
        for s in self._streams.values():
            if consumer not in s.holders():
                s.consumers.discard(consumer)

    async def maintain(self, now: float) -> None:
        mono = self._clock()
        for job_id in [j for j, job in self._jobs.items() if job.expires_at <= mono]:
            del self._jobs[job_id]
        for key in [k for k, (_, _, exp) in self._idempotency.items() if exp <= mono]:
            del self._idempotency[key]
        for consumer in [c for c, exp in self._workers.items() if exp <= mono]:
            del self._workers[consumer]
        for s in self._streams.values():
            s.consumers = (s.consumers & self._workers.keys()) | s.holders()

    async def stats(self) -> QueueStats:
        mono = self._clock()
        streams = tuple(
            StreamStats(
                stream=name,
                entries=len(s.entries),
                lag=len(s.undelivered),
                pending=len(s.pending),
                consumers=len(s.consumers | s.holders()),
            )
            for name, s in self._streams.items()
        )
        alive = sum(1 for exp in self._workers.values() if exp > mono)
        return QueueStats(streams, len(self._dead), alive, dict(self._counters))

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        return list(self._dead)[:count]
