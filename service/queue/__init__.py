"""Batch jobs: Redis Streams queue (in-process without ``REDIS_URL``), workers, callbacks.

Public entry points: ``build_job_service(config, processor) -> JobService`` (the gateway),
``Worker`` (``avserve worker``), ``QueueConfig`` and the ``JobProcessor`` signature.
See docs/queue.md for the semantics.
"""

from service.queue.config import QueueConfig
from service.queue.items import JobProcessor
from service.queue.service import JobService, build_job_service
from service.queue.worker import Worker

__all__ = ["JobProcessor", "JobService", "QueueConfig", "Worker", "build_job_service"]
