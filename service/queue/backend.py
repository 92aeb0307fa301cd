"""The job backend contract: stream operations plus idempotent job bookkeeping.

Two implementations share it: ``RedisBackend`` (Redis Streams, durable) and ``MemoryBackend``
(in-process, same semantics without durability). Workers and the job service only talk to
this protocol, so delivery, retry, dead-letter and exactly-once reporting rules are written
once (``consumer.py``, ``items.py``) and tested against both.

Streams are named logically (``config.high_stream`` ...); entries are string maps.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from service.errors import AvserveError, CapacityError

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
ItemState = Literal["queued", "running", "done", "failed", "cancelled"]
FinalItemState = Literal["done", "failed", "cancelled"]
TERMINAL_JOB_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})
# Owner of jobs submitted without authentication (auth off), and of jobs stored before
# owners were recorded.
ANONYMOUS = "anonymous"


class BackendUnavailable(AvserveError):
    """The queue store cannot be reached; callers retry with backoff (HTTP 503)."""

    code = "queue_unavailable"


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to this consumer, with how many times it was delivered."""

    stream: str
    entry_id: str
    fields: Mapping[str, str]
    deliveries: int

    @property
    def job_id(self) -> str:
        return self.fields["job"]

    @property
    def index(self) -> int:
        return int(self.fields.get("item", "-1"))

    @property
    def url(self) -> str:
        return self.fields.get("url", "")


@dataclass(frozen=True)
class NewJob:
    job_id: str
    lane: str  # "high" | "batch"
    stream: str
    urls: tuple[str, ...]
    options_json: str
    callback_url: str | None
    body_hash: str
    idempotency_key: str | None
    created_at: float
    # The submitting principal (an API-key id, never the key). Idempotency keys, reads and
    # the backlog quota are scoped to it.
    owner: str = ANONYMOUS
    # Extra fields of every item's stream entry: the submitter's trace context and request id
    # (``service.tracing.entry_fields``); never "job", "item" or "url".
    entry_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmitOutcome:
    job_id: str
    created: bool  # False: an earlier submit with the same key and body


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    status: JobStatus
    lane: str
    total: int
    done: int
    failed: int
    cancelled: int
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    options_json: str
    callback_url: str | None
    callback_status: str | None  # None | "pending" | "delivered" | "failed"
    callback_attempts: int
    callback_error: str | None
    expires_in_s: float | None
    owner: str = ANONYMOUS

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed - self.cancelled


@dataclass(frozen=True)
class ItemRecord:
    index: int
    url: str
    state: ItemState
    record: Mapping[str, Any] | None  # the final record (result or error); None until final


@dataclass(frozen=True)
class BeginOutcome:
    proceed: bool
    options_json: str | None = None
    reason: str = ""  # why not: "final" (already reported or cancelled) | "gone" (expired)


class FinishOutcome(enum.IntEnum):
    JOB_GONE = -1  # job keys expired: nothing to report to
    DUPLICATE = 0  # the item already had a final state: this write was dropped
    RECORDED = 1
    JOB_COMPLETED = 2  # this write finished the job


@dataclass(frozen=True)
class ReclaimResult:
    deliveries: list[Delivery]
    cursor: str
    lost: int = 0  # pending entries that were trimmed away before being reclaimed


@dataclass(frozen=True)
class StreamStats:
    stream: str
    entries: int  # XLEN (includes acknowledged entries not yet trimmed)
    lag: int  # entries never delivered to the group
    pending: int  # delivered, not yet acknowledged
    consumers: int

    @property
    def backlog(self) -> int:
        return self.lag + self.pending


@dataclass(frozen=True)
class QueueStats:
    streams: tuple[StreamStats, ...]
    dead_letter: int
    workers_alive: int
    counters: Mapping[str, int] = field(default_factory=dict)  # cumulative, queue-wide


class JobBackend(Protocol):
    """Storage and delivery for jobs. Every method is safe to call concurrently."""

    kind: str  # "redis" | "memory"
    durable: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # -- gateway side ------------------------------------------------------------------
    async def submit(self, job: NewJob) -> SubmitOutcome:
        """Store the job and enqueue its items atomically; raise ``idempotency_conflict`` /
        ``queue_full`` / ``quota_exceeded`` AvserveErrors. Idempotency keys are looked up
        within ``job.owner`` only. Returns only once the write was accepted."""
        ...

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def get_items(self, job_id: str, start: int, stop: int) -> list[ItemRecord]: ...

    async def cancel(self, job_id: str, now: float) -> JobRecord | None:
        """Mark every item that has not started as cancelled; None when the job is unknown."""
        ...

    # -- worker side -------------------------------------------------------------------
    async def read(
        self, consumer: str, streams: Sequence[str], count: int, block_s: float
    ) -> list[Delivery]: ...

    async def begin(self, delivery: Delivery, now: float) -> BeginOutcome:
        """Mark the item started unless it is already final or its job is gone."""
        ...

    async def finish(
        self,
        delivery: Delivery,
        state: FinalItemState,
        record: Mapping[str, Any],
        now: float,
        *,
        dead_letter: bool = False,
    ) -> FinishOutcome:
        """Write the item's final state once (later writes are dropped), update the job's
        counters and status, queue the completion callback, and acknowledge the entry,
        all atomically. ``dead_letter`` also copies the entry to the dead-letter stream;
        a failed record without an error then takes the item's last recorded error."""
        ...

    async def release(
        self,
        consumer: str,
        delivery: Delivery,
        *,
        available_in_s: float,
        deliveries: int,
        error: Mapping[str, str] | None = None,
    ) -> None:
        """Give back an entry ``consumer`` owns: reclaimable by any worker after
        ``available_in_s``, its delivery count set to ``deliveries``; ``error`` is kept as
        the item's last error (reported if the item is later dead-lettered)."""
        ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        """Reset the idle time of entries this consumer still owns (in-flight heartbeat)."""
        ...

    async def reclaim(
        self, consumer: str, stream: str, min_idle_s: float, count: int, cursor: str = "0-0"
    ) -> ReclaimResult: ...

    async def finish_callback(
        self, delivery: Delivery, status: str, attempts: int, error: str | None
    ) -> None:
        """Record a callback's outcome on its job and acknowledge the callback entry."""
        ...

    # -- housekeeping ------------------------------------------------------------------
    async def heartbeat(self, consumer: str, ttl_s: float) -> None: ...

    async def forget_consumer(self, consumer: str) -> None: ...

    async def maintain(self, now: float) -> None:
        """Trim acknowledged stream entries, drop stale consumers, expire old state."""
        ...

    async def stats(self) -> QueueStats: ...

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """Dead-lettered entries (item fields + stream, entry, deliveries, error), oldest first."""
        ...


def crash_error(deliveries: int) -> dict[str, str]:
    """The error reported for an item that no worker finished (killed, hung, stuck)."""
    return {
        "code": "worker_crashed",
        "message": f"no worker completed this item in {deliveries} deliveries",
    }


# The refusals of ``JobBackend.submit``, worded alike by every backend.
def idempotency_conflict() -> AvserveError:
    return AvserveError(
        "this Idempotency-Key was used with a different request body", code="idempotency_conflict"
    )


def queue_full(waiting: int) -> CapacityError:
    return CapacityError(
        f"the job queue is full ({waiting} items waiting)", code="queue_full", retry_after_s=30.0
    )


def quota_exceeded(owned: int, quota: int) -> CapacityError:
    return CapacityError(
        f"this API key already has {owned} unfinished items queued (quota {quota})",
        code="quota_exceeded",
        retry_after_s=30.0,
    )
