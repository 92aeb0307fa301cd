"""Batch jobs: Redis Streams queue (in-process without ``REDIS_URL``), workers, callbacks.

Public entry points: ``build_job_service(config, processor) -> JobService`` (the gateway),
``Worker`` (``avserve worker``), ``QueueConfig`` and the ``JobProcessor`` signature.
See docs/queue.md for the semantics.

Reading map: the files one job item passes through, in order.

1. ``schemas.py``: the HTTP body of ``POST /v1/jobs`` (routes: ``service/api/routes/jobs.py``).
2. ``service.py``: ``JobService.submit`` turns it into a ``NewJob`` for the backend.
3. ``backend.py``: the backend contract and its records; ``redis_backend.py`` (with
   ``redis_scripts.py``, ``redis_streams.py``) or ``memory_backend.py`` stores the job and
   adds one stream entry per item.
4. ``consumer.py``: a worker's consumer reads the entry (high lane first), keeps it claimed,
   reclaims entries of dead workers.
5. ``items.py``: begin, run the ``JobProcessor`` (fetch + classify, wired in
   ``service/wiring.py``), report the result once, acknowledge or retry.
6. ``callbacks.py``: the job's last item queues its completion callback, sent the same way.

Around them: ``worker.py`` (one worker = item consumer + callback consumer + heartbeats),
``runner.py`` and ``liveness.py`` (the ``avserve worker`` process and its probe),
``metrics.py`` and ``config.py``.
"""

from service.queue.config import QueueConfig
from service.queue.items import JobProcessor
from service.queue.service import JobService, build_job_service
from service.queue.worker import Worker

__all__ = ["JobProcessor", "JobService", "QueueConfig", "Worker", "build_job_service"]
