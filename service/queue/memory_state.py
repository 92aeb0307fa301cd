"""The in-process job backend's state: what the Redis backend keeps in streams and hashes.

``MemStream`` is one Redis stream with its consumer group (entries, undelivered ids, the
pending-entries list, group members); ``MemJob`` is one job's hash plus its per-item records.
``service.queue.memory_backend`` changes them; nothing here awaits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from service.queue.backend import ANONYMOUS, JobStatus


@dataclass
class MemPending:
    consumer: str
    delivered_at: float  # monotonic; idle time = now - delivered_at
    count: int


@dataclass
class MemStream:
    entries: dict[str, dict[str, str]] = field(default_factory=dict)  # unacknowledged entries
    undelivered: deque[str] = field(default_factory=deque)
    pending: dict[str, MemPending] = field(default_factory=dict)
    # Group members, as Redis keeps them: added by a heartbeat, read or claim; dropped once
    # their heartbeat expired and they hold nothing.
    consumers: set[str] = field(default_factory=set)
    seq: int = 0

    def holders(self) -> set[str]:
        return {p.consumer for p in self.pending.values()}

    def add(self, fields: dict[str, str]) -> str:
        self.seq += 1
        entry_id = f"{self.seq}-0"
        self.entries[entry_id] = fields
        self.undelivered.append(entry_id)
        return entry_id

    def ack(self, entry_id: str) -> None:
        if self.pending.pop(entry_id, None) is not None:
            self.entries.pop(entry_id, None)


@dataclass
class MemJob:
    job_id: str
    lane: str
    urls: list[str]
    options_json: str
    callback_url: str | None
    created_at: float
    expires_at: float  # monotonic
    owner: str = ANONYMOUS
    status: JobStatus = "queued"
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    callback_status: str | None = None
    callback_attempts: int = 0
    callback_error: str | None = None
    items: dict[int, dict[str, Any]] = field(default_factory=dict)  # final records
    started: set[int] = field(default_factory=set)
    errors: dict[int, dict[str, str]] = field(default_factory=dict)  # last retryable error

    @property
    def total(self) -> int:
        return len(self.urls)
