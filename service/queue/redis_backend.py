"""Redis Streams job backend (durable; shared by the gateway and every `avserve worker`).

Key layout under ``<prefix>:`` (see docs/queue.md): ``stream:high``/``stream:batch`` item
streams read by one consumer group, ``stream:callbacks`` completion callbacks,
``stream:dead`` dead letters, ``job:<id>`` job hash plus ``:items`` (final records),
``:urls``, ``:started`` and ``:errors``, ``idem:<sha256(owner, key)>`` idempotency keys,
``owner:<sha256(owner)>:jobs`` each principal's job ids (backlog quota), ``stats``
(queue-wide counters) and ``workers`` (heartbeats). All job keys carry the result TTL.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from service.queue import redis_scripts as lua
from service.queue.backend import (
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
    SubmitOutcome,
    crash_error,
)
from service.queue.config import QueueConfig
from service.queue.redis_streams import (
    guarded,
    job_record,
    make_client,
    new_job_hash,
    stream_stats,
    submit_refusal,
    trim_acked,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_CORE = frozenset({"job", "item", "url"})  # entry fields the queue owns


class RedisBackend:
    """``JobBackend`` on Redis >= 7 (consumer-group lag needs 7.0)."""

    kind = "redis"
    durable = True

    def __init__(self, config: QueueConfig, client: aioredis.Redis | None = None) -> None:
        client = client if client is not None else make_client(config)
        self._config = config
        # Typed Any: redis-py annotates replies as bytes|str unions; we decode responses.
        self._r: Any = client
        self._group = config.group
        self._ttl_ms = int(config.result_ttl_s * 1000)
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in (
                "SUBMIT",
                "BEGIN",
                "FINISH",
                "CANCEL",
                "RELEASE",
                "TOUCH",
                "RECLAIM",
                "FINISH_CALLBACK",
                "HEARTBEAT",
                "DROP_GONE_CONSUMERS",
                "ALIVE",
            )
        }
        self._names = {
            config.key(s): s
            for s in (config.high_stream, config.batch_stream, config.callback_stream)
        }

    # -- plumbing ----------------------------------------------------------------------
    def _k(self, name: str) -> str:
        return self._config.key(name)

    def _job_keys(self, job_id: str) -> list[str]:
        base = self._k(f"job:{job_id}")
        return [base, f"{base}:items", f"{base}:urls", f"{base}:started", f"{base}:errors"]

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await guarded(fn, self._ensure_groups)

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._scripts[name]
        return await self._call(lambda: script(keys=list(keys), args=list(args)))

    async def _ensure_groups(self) -> None:
        for stream in self._names:
            try:
                await self._r.xgroup_create(stream, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def start(self) -> None:
        await self._call(self._ensure_groups)

    async def close(self) -> None:
        await self._r.aclose()

    @property
    def client(self) -> aioredis.Redis:
        client: aioredis.Redis = self._r
        return client

    # -- gateway side ------------------------------------------------------------------
    async def submit(self, job: NewJob) -> SubmitOutcome:
        c = self._config
        flat = new_job_hash(job)
        key = job.idempotency_key
        # Keys are scoped to the owner: another principal's identical key is another key.
        scoped = f"{job.owner}\n{key or ''}"
        idem_key = self._k(f"idem:{hashlib.sha256(scoped.encode()).hexdigest()}")
        owner_key = self._k(f"owner:{hashlib.sha256(job.owner.encode()).hexdigest()[:32]}:jobs")
        keys = [
            *self._job_keys(job.job_id),
            self._k(job.stream),
            idem_key,
            self._k("stats"),
            self._k(c.high_stream),
            self._k(c.batch_stream),
            owner_key,
        ]
        args = [
            job.job_id,
            self._group,
            job.body_hash,
            self._ttl_ms,
            c.max_queue_length,
            c.stream_maxlen,
            "1" if key is not None else "0",
            len(flat),
            c.principal_quota,
            self._k("job:"),
            json.dumps([x for kv in job.entry_fields.items() if kv[0] not in _CORE for x in kv]),
            *flat,
            *job.urls,
        ]
        code, value = await self._script("SUBMIT", keys, args)
        code = int(code)
        refusal = submit_refusal(code, value, c.principal_quota)
        if refusal is not None:
            raise refusal
        if code == 1 and c.wait_replicas > 0:
            acked = await self._call(
                lambda: self._r.wait(c.wait_replicas, int(c.wait_timeout_s * 1000))
            )
            if acked < c.wait_replicas:
                log.warning("job %s reached %d of %d replicas", job.job_id, acked, c.wait_replicas)
        return SubmitOutcome(str(value), created=code == 1)

    async def get_job(self, job_id: str) -> JobRecord | None:
        key = self._job_keys(job_id)[0]

        async def fetch() -> tuple[dict[str, str], int]:
            async with self._r.pipeline(transaction=True) as p:
                p.hgetall(key)
                p.pttl(key)
                h, ttl = await p.execute()
            return h, ttl

        h, ttl_ms = await self._call(fetch)
        if not h:
            return None
        return job_record(h, ttl_ms)

    async def get_items(self, job_id: str, start: int, stop: int) -> list[ItemRecord]:
        _, items_key, urls_key, started_key, _ = self._job_keys(job_id)
        if stop <= start:
            return []

        async def fetch() -> list[ItemRecord]:
            urls: list[str] = await self._r.lrange(urls_key, start, stop - 1)
            if not urls:
                return []
            idx = [str(start + i) for i in range(len(urls))]
            async with self._r.pipeline(transaction=False) as p:
                p.hmget(items_key, idx)
                p.smismember(started_key, idx)
                records, started = await p.execute()
            out = []
            for i, url in enumerate(urls):
                rec = json.loads(records[i]) if records[i] else None
                state: ItemState = rec["state"] if rec else ("running" if started[i] else "queued")
                out.append(ItemRecord(start + i, url, state, rec))
            return out

        return await self._call(fetch)

    async def cancel(self, job_id: str, now: float) -> JobRecord | None:
        c = self._config
        record = json.dumps({"state": "cancelled", "finished_at": now})
        keys = [*self._job_keys(job_id), self._k("stats"), self._k(c.callback_stream)]
        found = await self._script(
            "CANCEL", keys, [repr(now), self._ttl_ms, record, c.stream_maxlen]
        )
        return await self.get_job(job_id) if int(found) else None

    # -- worker side -------------------------------------------------------------------
    def _delivery(
        self, stream_key: str, entry_id: str, fields: Mapping[str, str], n: int
    ) -> Delivery:
        return Delivery(self._names[stream_key], entry_id, dict(fields), n)

    async def read(
        self, consumer: str, streams: Sequence[str], count: int, block_s: float
    ) -> list[Delivery]:
        keys = {self._k(s): ">" for s in streams}
        block = int(block_s * 1000) if block_s > 0 else None
        resp = await self._call(
            lambda: self._r.xreadgroup(self._group, consumer, keys, count=count, block=block)
        )
        out: list[Delivery] = []
        for stream_key, entries in resp or []:
            for entry_id, fields in entries:
                if fields is not None:
                    out.append(self._delivery(stream_key, entry_id, fields, 1))
        return out

    async def begin(self, delivery: Delivery, now: float) -> BeginOutcome:
        ok, value = await self._script(
            "BEGIN", self._job_keys(delivery.job_id), [delivery.index, repr(now), self._ttl_ms]
        )
        if int(ok):
            return BeginOutcome(True, options_json=value)
        return BeginOutcome(False, reason=value)

    async def finish(
        self,
        delivery: Delivery,
        state: FinalItemState,
        record: Mapping[str, Any],
        now: float,
        *,
        dead_letter: bool = False,
    ) -> FinishOutcome:
        c = self._config
        keys = self._job_keys(delivery.job_id)
        final = {**record, "state": state}
        dead_fields: list[str] = []
        if dead_letter:
            if state == "failed" and "error" not in final:
                last = await self._call(lambda: self._r.hget(keys[4], str(delivery.index)))
                final["error"] = json.loads(last) if last else crash_error(delivery.deliveries - 1)
            dead = {
                **delivery.fields,
                "stream": delivery.stream,
                "entry": delivery.entry_id,
                "deliveries": str(delivery.deliveries),
                "error": json.dumps(final.get("error")),
            }
            dead_fields = [x for kv in dead.items() for x in kv]
        keys += [
            self._k(delivery.stream),
            self._k("stats"),
            self._k(c.callback_stream),
            self._k(c.dead_letter_stream),
        ]
        args = [
            self._group,
            delivery.entry_id,
            delivery.index,
            state,
            json.dumps(final, separators=(",", ":")),
            repr(now),
            self._ttl_ms,
            "1" if dead_letter else "0",
            json.dumps(dead_fields),
            c.dead_letter_maxlen,
            c.stream_maxlen,
        ]
        return FinishOutcome(int(await self._script("FINISH", keys, args)))

    async def release(
        self,
        consumer: str,
        delivery: Delivery,
        *,
        available_in_s: float,
        deliveries: int,
        error: Mapping[str, str] | None = None,
    ) -> None:
        idle_ms = int(max(0.0, self._config.visibility_timeout_s - available_in_s) * 1000)
        is_item = "item" in delivery.fields
        keys = [*self._job_keys(delivery.fields.get("job", "")), self._k(delivery.stream)]
        args = [
            self._group,
            consumer,
            delivery.entry_id,
            str(delivery.index) if is_item else "",
            idle_ms,
            deliveries,
            json.dumps(error) if error is not None else "",
            self._ttl_ms,
        ]
        await self._script("RELEASE", keys, args)

    async def ack(self, delivery: Delivery) -> None:
        key = self._k(delivery.stream)
        await self._call(lambda: self._r.xack(key, self._group, delivery.entry_id))

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        by_stream: dict[str, list[str]] = {}
        for d in deliveries:
            by_stream.setdefault(d.stream, []).append(d.entry_id)
        for stream, ids in by_stream.items():
            await self._script("TOUCH", [self._k(stream)], [self._group, consumer, *ids])

    async def reclaim(
        self, consumer: str, stream: str, min_idle_s: float, count: int, cursor: str = "0-0"
    ) -> ReclaimResult:
        key = self._k(stream)
        args = [self._group, consumer, int(min_idle_s * 1000), cursor, count]
        next_cursor, entries, lost = await self._script("RECLAIM", [key], args)
        out = []
        for entry_id, flat, n in entries:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            out.append(self._delivery(key, entry_id, fields, int(n)))
        if int(lost):
            log.error("%d pending entries of %s were trimmed before being reclaimed", lost, key)
        return ReclaimResult(out, next_cursor, int(lost))

    async def finish_callback(
        self, delivery: Delivery, status: str, attempts: int, error: str | None
    ) -> None:
        keys = [self._job_keys(delivery.job_id)[0], self._k(delivery.stream)]
        args = [self._group, delivery.entry_id, status, attempts, error or ""]
        await self._script("FINISH_CALLBACK", keys, args)

    # -- housekeeping ------------------------------------------------------------------
    async def heartbeat(self, consumer: str, ttl_s: float) -> None:
        await self._script(
            "HEARTBEAT",
            [self._k("workers"), *self._names],
            [consumer, int(ttl_s * 1000), self._group],
        )

    async def forget_consumer(self, consumer: str) -> None:
        workers = self._k("workers")
        await self._call(lambda: self._r.zrem(workers, consumer))
        for stream in self._names:
            pending = await self._call(
                partial(self._r.xpending_range, stream, self._group, "-", "+", 1, consumer)
            )
            if not pending:
                await self._call(partial(self._r.xgroup_delconsumer, stream, self._group, consumer))

    async def maintain(self, now: float) -> None:
        workers = self._k("workers")
        for key in self._names:
            await self._call(partial(trim_acked, self._r, key, self._group))
            await self._script("DROP_GONE_CONSUMERS", [workers, key], [self._group])

    async def stats(self) -> QueueStats:
        c = self._config
        streams = [
            await self._call(partial(stream_stats, self._r, self._k(s), s, self._group))
            for s in (c.high_stream, c.batch_stream, c.callback_stream)
        ]
        dead = await self._call(lambda: self._r.xlen(self._k(c.dead_letter_stream)))
        alive = await self._script("ALIVE", [self._k("workers")], [])
        counters = await self._call(lambda: self._r.hgetall(self._k("stats")))
        return QueueStats(
            tuple(streams), int(dead), int(alive), {k: int(v) for k, v in counters.items()}
        )

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        key = self._k(self._config.dead_letter_stream)
        entries = await self._call(lambda: self._r.xrange(key, count=count))
        return [dict(fields) for _, fields in entries]
