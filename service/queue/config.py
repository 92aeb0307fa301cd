"""Queue configuration: one frozen dataclass shared by the gateway, workers and tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# Per-item failures worth another delivery. Everything else raised as an AvserveError
# (url_forbidden, undecodable, too_long, ...) is a property of the input and is final.
DEFAULT_RETRYABLE_CODES: frozenset[str] = frozenset(
    {
        "worker_crashed",
        "timeout",
        "internal",
        "overloaded",
        "queue_full",
        "shutting_down",
        "not_ready",
        "deadline_exceeded",
        "queue_unavailable",
    }
)


@dataclass(frozen=True)
class QueueConfig:
    """Everything the job queue needs; defaults suit the embedded (no Redis) mode.

    Times are seconds. Stream/key names are relative to ``prefix`` (``<prefix>:<name>``).
    """

    # Backend: None runs jobs on the in-process queue (same API, not durable).
    redis_url: str | None = None
    prefix: str = "avserve"
    group: str = "workers"
    high_stream: str = "stream:high"  # jobs submitted with priority "high"
    batch_stream: str = "stream:batch"  # default lane for nightly batches
    dead_letter_stream: str = "stream:dead"
    callback_stream: str = "stream:callbacks"

    # Limits.
    max_items_per_job: int = 10_000
    max_queue_length: int = 100_000  # unfinished items over both lanes; above it: 429 queue_full
    # Unfinished items one principal (API key) may have queued; above it: 429 quota_exceeded.
    # None: twice max_items_per_job, capped at max_queue_length.
    max_backlog_per_principal: int | None = None
    result_ttl_s: float = 86_400.0  # job keys live this long after their last change
    stream_maxlen: int = 1_000_000  # XADD MAXLEN ~ safety cap (acked entries are trimmed sooner)
    dead_letter_maxlen: int = 100_000

    # Delivery.
    visibility_timeout_s: float = 60.0  # idle time after which another worker reclaims an item
    max_deliveries: int = 5  # deliveries before an item is dead-lettered
    reaper_interval_s: float = 5.0
    heartbeat_interval_s: float = 10.0  # also how often in-flight items are kept claimed
    item_timeout_s: float = 600.0  # one processor call; on expiry the item is retried
    retry_backoff_s: float = 2.0  # first retry delay after a retryable failure; doubles
    retry_backoff_max_s: float = 60.0
    retryable_codes: frozenset[str] = DEFAULT_RETRYABLE_CODES
    read_block_s: float = 1.0  # XREADGROUP BLOCK; bounds how fast a worker notices SIGTERM
    reconnect_backoff_max_s: float = 5.0

    # Workers.
    concurrency: int = 4  # items processed at once per worker
    shutdown_grace_s: float = 30.0
    consumer_name: str | None = None  # stable name (e.g. the pod name); default host-pid-random
    embedded_worker: bool | None = None  # run a worker inside the gateway; None: only without Redis
    metrics_port: int | None = None  # `avserve worker` serves /metrics here when set
    metrics_interval_s: float = 5.0  # how often queue-wide gauges are refreshed from the backend

    # Durability knob: WAIT for this many replicas before acknowledging a submit (0: off).
    wait_replicas: int = 0
    wait_timeout_s: float = 1.0

    # Completion callbacks.
    callback_retries: int = 5  # retries after the first attempt
    callback_backoff_s: float = 1.0
    callback_backoff_max_s: float = 60.0
    callback_timeout_s: float = 10.0
    callback_concurrency: int = 2
    # Networks a callback may reach despite being private/loopback (empty: public only).
    callback_allow_networks: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        positive = {
            "max_items_per_job": self.max_items_per_job,
            "max_queue_length": self.max_queue_length,
            "result_ttl_s": self.result_ttl_s,
            "visibility_timeout_s": self.visibility_timeout_s,
            "max_deliveries": self.max_deliveries,
            "reaper_interval_s": self.reaper_interval_s,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "item_timeout_s": self.item_timeout_s,
            "read_block_s": self.read_block_s,
            "concurrency": self.concurrency,
            "callback_timeout_s": self.callback_timeout_s,
            "callback_concurrency": self.callback_concurrency,
            "metrics_interval_s": self.metrics_interval_s,
            "dead_letter_maxlen": self.dead_letter_maxlen,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"QueueConfig.{name} must be > 0, got {value!r}")
        for name, value in {
            "retry_backoff_s": self.retry_backoff_s,
            "callback_retries": self.callback_retries,
            "callback_backoff_s": self.callback_backoff_s,
            "shutdown_grace_s": self.shutdown_grace_s,
            "wait_replicas": self.wait_replicas,
        }.items():
            if value < 0:
                raise ValueError(f"QueueConfig.{name} must be >= 0, got {value!r}")
        quota = self.max_backlog_per_principal
        if quota is not None and quota < self.max_items_per_job:
            # A full-size job could then never be accepted: a permanent 429 is a config bug.
            raise ValueError("max_backlog_per_principal must be >= max_items_per_job")
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            # In-flight items are re-claimed every heartbeat; a longer interval would let the
            # reaper steal work from healthy workers.
            raise ValueError("heartbeat_interval_s must be shorter than visibility_timeout_s")
        if self.stream_maxlen < 2 * self.max_queue_length:
            # MAXLEN ~ must never reach unfinished entries; keep a wide margin over the backlog.
            raise ValueError("stream_maxlen must be at least 2 * max_queue_length")
        if not self.prefix or any(c.isspace() or c in "*?[]" for c in self.prefix):
            raise ValueError(f"invalid key prefix {self.prefix!r}")
        for net in self.callback_allow_networks:
            ipaddress.ip_network(net, strict=False)  # raises ValueError on garbage

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None

    @property
    def runs_embedded_worker(self) -> bool:
        return self.embedded_worker if self.embedded_worker is not None else not self.uses_redis

    @property
    def principal_quota(self) -> int:
        """Unfinished items one principal may have queued (see ``max_backlog_per_principal``)."""
        if self.max_backlog_per_principal is not None:
            return self.max_backlog_per_principal
        return min(2 * self.max_items_per_job, self.max_queue_length)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def stream_for_lane(self, lane: str) -> str:
        """Logical stream name of a job lane (``high`` or ``batch``)."""
        return {"high": self.high_stream, "batch": self.batch_stream}[lane]

    @property
    def item_streams(self) -> tuple[str, str]:
        """Item streams in the order workers serve them: high before batch."""
        return (self.high_stream, self.batch_stream)
