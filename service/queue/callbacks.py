"""Completion callbacks: one POST per finished job, SSRF-guarded, with retries and backoff.

The finishing ``finish`` write queues a callback entry atomically with the job's last item
result, so a worker crash cannot lose it; ``CallbackHandler`` (a ``DeliveryHandler``) sends
it. Delivery is at-least-once: a worker killed after the POST but before recording it makes
another worker POST again; receivers dedupe on the ``X-Avserve-Job-Id`` header.

The address guard (the media fetcher's, ``service.media.netguard``) resolves the host once,
refuses non-public addresses (unless allowed by
``QueueConfig.callback_allow_networks``) and the POST connects to that checked address
(Host header and TLS SNI keep the original name), so DNS rebinding cannot redirect it.
Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from service.errors import FetchError
from service.media.fetch import check_url
from service.media.netguard import parse_networks, resolve_checked
from service.queue.backend import Delivery, JobBackend
from service.queue.config import QueueConfig
from service.queue.items import persist
from service.queue.metrics import WorkerMetrics
from service.queue.schemas import job_out
from service.redact import redact_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedTarget:
    """A URL whose host resolved to ``ip``, which passed the address check."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str


AddressGuard = Callable[[str], Awaitable[ResolvedTarget]]


class PublicAddressGuard:
    """Default ``AddressGuard``: the media fetcher's SSRF rules (``service.media.netguard``).

    http(s) only, no credentials; the host is resolved once and every address must be public
    unless inside ``allow_networks``.
    """

    def __init__(self, allow_networks: Sequence[str] = ()) -> None:
        self._allow = parse_networks(allow_networks)

    async def __call__(self, url: str) -> ResolvedTarget:
        u = check_url(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        resolved = await resolve_checked(u.host, port, self._allow)
        return ResolvedTarget(url, u.scheme, u.host, port, resolved.address)


@dataclass(frozen=True)
class CallbackOutcome:
    delivered: bool
    attempts: int
    error: str | None = None
    status_code: int | None = None


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


class CallbackSender:
    """POSTs JSON to a guarded address with retries (exponential backoff with jitter)."""

    def __init__(
        self,
        config: QueueConfig,
        *,
        guard: AddressGuard | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._guard = guard or PublicAddressGuard(config.callback_allow_networks)
        self._sleep = sleep
        # trust_env=False: an environment proxy would connect on its own and undo the pinning.
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=config.callback_timeout_s,
            follow_redirects=False,
            trust_env=False,
        )

    async def check(self, url: str) -> ResolvedTarget:
        """Validate a callback URL at submit time (raises ``FetchError``)."""
        return await self._guard(url)

    def backoff_s(self, attempt: int) -> float:
        c = self._config
        base = min(c.callback_backoff_max_s, c.callback_backoff_s * 2**attempt)
        return base * (0.5 + random.random() / 2)

    async def deliver(self, url: str, payload: dict[str, Any], *, job_id: str) -> CallbackOutcome:
        body = json.dumps(payload, separators=(",", ":")).encode()
        attempts, last_error, last_status = 0, "not attempted", None
        for attempt in range(self._config.callback_retries + 1):
            if attempt:
                await self._sleep(self.backoff_s(attempt - 1))
            attempts += 1
            try:
                target = await self._guard(url)  # re-resolved per attempt: DNS may change
            except FetchError as exc:
                if exc.code == "url_unreachable":
                    last_error = f"{exc.code}: {exc.message}"
                    continue
                return CallbackOutcome(False, attempts, f"{exc.code}: {exc.message}")
            try:
                resp = await self._post(target, body, job_id)
            except httpx.HTTPError as exc:
                last_error = redact_text(f"{type(exc).__name__}: {exc}")[:300]
                last_status = None
                continue
            last_status = resp.status_code
            if 200 <= resp.status_code < 300:
                return CallbackOutcome(True, attempts, None, resp.status_code)
            last_error = f"HTTP {resp.status_code}"
            if not _retryable_status(resp.status_code):
                break
        return CallbackOutcome(False, attempts, last_error, last_status)

    async def _post(self, target: ResolvedTarget, body: bytes, job_id: str) -> httpx.Response:
        url = httpx.URL(target.url)
        host_header = url.netloc.decode("ascii")
        pinned = url.copy_with(host=target.ip)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        return await self._client.post(
            pinned,
            content=body,
            headers={
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": "avserve-callback/1",
                "X-Avserve-Job-Id": job_id,
            },
            extensions=extensions,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class CallbackHandler:
    """``DeliveryHandler`` for the callback stream."""

    def __init__(
        self,
        backend: JobBackend,
        config: QueueConfig,
        sender: CallbackSender,
        *,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._backend = backend
        self._config = config
        self._sender = sender
        self.metrics = metrics

    async def _persist(self, op: Callable[[], Awaitable[Any]]) -> Any:
        return await persist(op, self.metrics, self._config.reconnect_backoff_max_s)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.callbacks.labels(outcome).inc()

    async def handle(self, consumer: str, delivery: Delivery) -> None:
        d = delivery
        if "job" not in d.fields:  # not written by us: drop it
            await self._persist(lambda: self._backend.ack(d))
            return
        job = await self._persist(lambda: self._backend.get_job(d.job_id))
        if job is None or not job.callback_url or job.callback_status == "delivered":
            await self._persist(lambda: self._backend.ack(d))
            self._count("skipped")
            return
        summary = job_out(job, durable=self._backend.durable, now=time.time())
        payload = {"event": "job.finished", "job": summary.model_dump(mode="json")}
        outcome = await self._sender.deliver(job.callback_url, payload, job_id=job.job_id)
        status = "delivered" if outcome.delivered else "failed"
        if not outcome.delivered:
            log.warning("callback for job %s failed: %s", job.job_id, outcome.error)
        await self._persist(
            lambda: self._backend.finish_callback(d, status, outcome.attempts, outcome.error)
        )
        self._count(status)

    async def exhausted(self, consumer: str, delivery: Delivery) -> None:
        d = delivery
        if "job" not in d.fields:
            await self._persist(lambda: self._backend.ack(d))
            return
        error = f"abandoned after {d.deliveries - 1} deliveries"
        await self._persist(lambda: self._backend.finish_callback(d, "failed", 0, error))
        self._count("failed")
