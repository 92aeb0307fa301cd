"""Readiness, draining and in-flight accounting of one gateway instance.

``ready`` is true only after the models are loaded and warmed up, and false again from the
moment a drain starts (SIGTERM). ``begin_drain`` is safe to call from a signal handler: it
only flips a flag that the event loop reads.
"""

from __future__ import annotations

import asyncio
import time


class Lifecycle:
    def __init__(self) -> None:
        self.started = False
        self.draining = False
        self.drain_started_at: float | None = None
        self.active = 0  # requests being served, health and metrics excluded
        self.work = 0  # admitted work requests (classify, job submission)
        self.receiving = 0  # work requests whose body is still arriving (not yet admitted)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    def mark_started(self) -> None:
        self.started = True

    def begin_drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.drain_started_at = time.monotonic()

    async def wait_idle(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until no request is being served; False when ``timeout_s`` ran out first."""
        end = time.monotonic() + timeout_s
        while self.active > 0:
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(poll_s)
        return True
