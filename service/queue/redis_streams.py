"""Low-level Redis helpers of the Redis backend: client, error mapping, stream upkeep.

Kept apart from ``redis_backend`` (the ``JobBackend`` operations) so that each stays small.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.errors import AvserveError
from service.queue.backend import (
    ANONYMOUS,
    BackendUnavailable,
    JobRecord,
    NewJob,
    StreamStats,
    idempotency_conflict,
    queue_full,
    quota_exceeded,
)
from service.queue.config import QueueConfig

T = TypeVar("T")
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


def make_client(config: QueueConfig) -> aioredis.Redis:
    if config.redis_url is None:
        raise ValueError("the Redis backend needs QueueConfig.redis_url")
    client: aioredis.Redis = aioredis.Redis.from_url(
        config.redis_url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        # Blocking XREADGROUP must not trip the socket timeout.
        socket_timeout=config.read_block_s + 10.0,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    )
    return client


def raise_if_cancel_was_swallowed() -> None:
    """Re-raise a cancellation that redis-py lost on the way.

    On Python 3.11, ``asyncio.wait_for`` (used inside redis-py's reads) drops a cancel that
    races with the inner read completing (CPython gh-86296, fixed in 3.12); the task stays
    "cancelling" but carries on. Without this check a stop() could wait forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def guarded(
    fn: Callable[[], Awaitable[T]], recreate_groups: Callable[[], Awaitable[None]]
) -> T:
    """Run one Redis interaction; connection trouble becomes ``BackendUnavailable`` and a
    consumer group lost with a wiped Redis is re-created once."""
    for attempt in (0, 1):
        try:
            result = await fn()
            raise_if_cancel_was_swallowed()
            return result
        except ReadOnlyError as exc:  # a demoted primary during failover
            raise BackendUnavailable(f"redis is read-only: {exc}", retry_after_s=1) from exc
        except ResponseError as exc:
            if "NOGROUP" in str(exc) and attempt == 0:
                await recreate_groups()
                continue
            raise
        except _UNAVAILABLE as exc:
            raise_if_cancel_was_swallowed()
            raise BackendUnavailable(f"redis unavailable: {exc}", retry_after_s=1) from exc
    raise AssertionError("unreachable")


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def trim_acked(r: Any, key: str, group: str) -> None:
    """Drop entries the group has acknowledged: below the oldest pending entry and at or
    below the last delivered one. Undelivered or pending entries are never cut."""
    info = next((g for g in await r.xinfo_groups(key) if g["name"] == group), None)
    if info is None:
        return
    ms, seq = _stream_id(str(info["last-delivered-id"]))
    min_id = f"{ms}-{seq + 1}"
    if int(info["pending"]) > 0:
        summary = await r.xpending(key, group)
        if summary and summary.get("min"):
            min_id = min(min_id, str(summary["min"]), key=_stream_id)
    await r.xtrim(key, minid=min_id, approximate=True)


async def stream_stats(r: Any, key: str, name: str, group: str) -> StreamStats:
    entries = int(await r.xlen(key))
    groups = await r.xinfo_groups(key) if entries or await r.exists(key) else []
    g = next((g for g in groups if g["name"] == group), None)
    if g is None:
        return StreamStats(name, entries, entries, 0, 0)
    lag = g.get("lag")  # None when Redis cannot tell: count every entry
    return StreamStats(
        name,
        entries,
        int(lag) if lag is not None else entries,
        int(g["pending"]),
        int(g["consumers"]),
    )


def _opt_float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def job_record(h: dict[str, str], ttl_ms: int) -> JobRecord:
    """A job hash (``HGETALL job:<id>``) and its PTTL as a :class:`JobRecord`."""
    return JobRecord(
        job_id=h["id"],
        status=h["status"],  # type: ignore[arg-type]
        lane=h["lane"],
        total=int(h["total"]),
        done=int(h.get("done", 0)),
        failed=int(h.get("failed", 0)),
        cancelled=int(h.get("cancelled", 0)),
        created_at=float(h["created_at"]),
        updated_at=float(h.get("updated_at", h["created_at"])),
        started_at=_opt_float(h.get("started_at")),
        finished_at=_opt_float(h.get("finished_at")),
        options_json=h["options"],
        callback_url=h.get("callback_url"),
        callback_status=h.get("callback_status"),
        callback_attempts=int(h.get("callback_attempts", 0)),
        callback_error=h.get("callback_error") or None,
        expires_in_s=ttl_ms / 1000 if ttl_ms > 0 else None,
        owner=h.get("owner") or ANONYMOUS,
    )


def new_job_hash(job: NewJob) -> list[str]:
    """The fields of a new job's hash (``job:<id>``), flattened as HSET arguments."""
    fields: dict[str, str] = {
        "id": job.job_id,
        "status": "queued",
        "lane": job.lane,
        "total": str(len(job.urls)),
        "done": "0",
        "failed": "0",
        "cancelled": "0",
        "created_at": repr(job.created_at),
        "updated_at": repr(job.created_at),
        "options": job.options_json,
        "owner": job.owner,
    }
    if job.callback_url:
        fields["callback_url"] = job.callback_url
    return [x for kv in fields.items() for x in kv]


def submit_refusal(code: int, value: Any, quota: int) -> AvserveError | None:
    """The client error of a SUBMIT script's negative reply code (None when it was taken)."""
    if code == -1:
        return idempotency_conflict()
    if code == -2:
        return queue_full(int(value))
    if code == -3:
        return quota_exceeded(int(value), quota)
    return None
