"""The gateway under uvicorn, with a graceful SIGTERM drain.

SIGTERM (or Ctrl+C): readiness turns false at once and new work is refused with 503
``shutting_down``; requests in flight finish, bounded by ``shutdown_grace_s`` (after an optional
``drain_delay_s`` during which load balancers notice the readiness change); then the listener
closes, the lifespan stops jobs and batchers, and the process exits 0. A second signal skips
the wait for in-flight requests.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI

from service.api.lifecycle import Lifecycle
from service.errors import AvserveError

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


@dataclass
class ServeOutcome:
    code: int  # the process exit status
    error: str | None = None  # why start-up failed, one line (None when it did not)


class _HideStartupTraceback(logging.Filter):
    """Starlette hands uvicorn the formatted traceback of a failed lifespan start-up, which
    uvicorn logs as an error; without debug logging the CLI prints one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Traceback (most recent call last)")


def _record_startup_failure(app: FastAPI, failures: list[BaseException]) -> None:
    """Wrap the app's lifespan so that an exception raised before it yields is kept."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        started = False
        try:
            async with inner(a) as state:
                started = True
                yield state
        except BaseException as e:
            if not started:
                failures.append(e)
            raise

    app.router.lifespan_context = lifespan


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, AvserveError):
        return exc.message
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_server(
    app: FastAPI, host: str, port: int, *, sock: socket.socket | None = None
) -> ServeOutcome:
    """Serve ``app`` (built by ``create_app``) until drained.

    ``sock``: a listening socket bound beforehand (``service.startup.bind_listener``), so a
    port clash is reported before the models load; else uvicorn binds ``host:port`` itself.
    A failed start-up (models, warm-up, job queue) gives exit status 2 and its reason.
    """
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
    failures: list[BaseException] = []
    _record_startup_failure(app, failures)
    hide = None if settings.log_level == "debug" else _HideStartupTraceback()
    uvicorn_log = logging.getLogger("uvicorn.error")
    if hide is not None:
        uvicorn_log.addFilter(hide)
    try:
        server.run(sockets=[sock] if sock is not None else None)
    except SystemExit:
        # uvicorn exits the process itself when the lifespan start-up fails (status 3);
        # the caller prints why and exits with 2 instead.
        if server.started or not failures:
            raise
    finally:
        if hide is not None:
            uvicorn_log.removeFilter(hide)
    if server.started:
        return ServeOutcome(0)
    if failures:
        return ServeOutcome(2, _one_line(failures[0]))
    return ServeOutcome(1, "the server did not start (see the log above)")
