"""The gateway under uvicorn, with a graceful SIGTERM drain.

SIGTERM (or Ctrl+C): readiness turns false at once and new work is refused with 503
``shutting_down``; requests in flight finish, bounded by ``shutdown_grace_s`` (after an optional
``drain_delay_s`` during which load balancers notice the readiness change); then the listener
closes, the lifespan stops jobs and batchers, and the process exits 0. A second signal skips
the wait for in-flight requests.
"""

from __future__ import annotations

import logging
import time
from types import FrameType
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI

from service.api.lifecycle import Lifecycle

log = logging.getLogger("avserve.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM first drains (see module doc) instead of closing the listener."""

    def __init__(
        self, config: uvicorn.Config, lifecycle: Lifecycle, *, drain_delay_s: float, grace_s: float
    ) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_delay_s = drain_delay_s
        self.grace_s = grace_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Deliberately not recorded in uvicorn's captured signals: uvicorn would re-raise it
        # after shutdown and the process would die by the signal instead of exiting 0.
        if self.lifecycle.draining:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            return
        self.lifecycle.begin_drain()
        log.info("signal %d: draining (grace %.1f s)", sig, self.grace_s)

    async def on_tick(self, counter: int) -> bool:
        lc = self.lifecycle
        if lc.draining and not self.should_exit and lc.drain_started_at is not None:
            elapsed = time.monotonic() - lc.drain_started_at
            if elapsed >= self.drain_delay_s and (
                lc.active == 0 or elapsed >= self.drain_delay_s + self.grace_s
            ):
                if lc.active:
                    log.warning("grace period over, %d requests still in flight", lc.active)
                self.should_exit = True
        return await super().on_tick(counter)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            host, port = self.config.host, self.config.port
            for server in self.servers:  # the real port when 0 was asked for
                for sock in server.sockets:
                    port = sock.getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            typer.echo(
                f"avserve listening on http://{shown}:{port}  (API docs: http://{shown}:{port}/docs)"
            )


def run_server(app: FastAPI, host: str, port: int) -> int:
    """Serve ``app`` (built by ``create_app``) until drained; returns the exit code."""
    settings = app.state.settings
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # ours (JSON lines) from configure_logging
        access_log=False,  # the request middleware logs one line per request with its id
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s)),
        server_header=False,
    )
    server = DrainingServer(
        config,
        app.state.lifecycle,
        drain_delay_s=settings.drain_delay_s,
        grace_s=settings.shutdown_grace_s,
    )
    server.run()
    return 0 if server.started else 1
