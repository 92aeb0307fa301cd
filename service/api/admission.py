"""Pure-ASGI admission: draining, receive slots, the body guard, work slots, deadlines.

A work request (classify, job submission) passes two gates. While its body arrives it holds
one of ``max_receiving`` *receive* slots; only once the last body byte has arrived does it
take one of ``max_concurrent`` *work* slots (429 ``overloaded`` when none is free). A client
that trickles its body therefore never holds a work slot.

The body guard applies to every request with a body: a size cap (413 ``too_large``, early on
``Content-Length``, else while streaming), and a receive deadline that the server alone sets:
``body_timeout_s`` plus one second per ``min_body_rate`` bytes received so far (the
``mod_reqtimeout`` rule). ``X-Request-Timeout`` does not extend it. A body that falls behind
gets 408 ``body_timeout``; a client that disconnects mid-body is recorded as 499
``client_closed`` (a client abort, not a server error). In each case the app's own answer to
the truncated body is replaced by that error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import paths
from service.api.errors import error_response
from service.api.lifecycle import Lifecycle
from service.api.middleware import WORK_ROUTES, _header, _is_open
from service.errors import AvserveError
from service.metrics import Metrics
from service.settings import Settings

TIMEOUT_HEADER = "x-request-timeout"
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def job_body_limit(settings: Settings) -> int:
    """The /v1/jobs body cap: sized so a job of ``max_items_per_job`` real URLs fits (1 KiB
    per item on top of ``max_body_bytes``), unless set explicitly."""
    if settings.max_job_body_bytes is not None:
        return settings.max_job_body_bytes
    return settings.max_body_bytes + 1024 * settings.queue.max_items_per_job


class _Refused(BaseException):
    """Raised into the app from ``receive`` when the body guard or admission refuses the request.

    A BaseException, like ``CancelledError``: the app's generic handlers (FastAPI's body
    parsing, the last-resort 500 handler) must neither swallow it nor log a traceback; it
    unwinds the endpoint (temp files are removed on the way) back to this middleware.
    """

    def __init__(self, error: AvserveError) -> None:
        super().__init__(error.message)
        self.error = error


class AdmissionMiddleware:
    """See the module doc. ``path_limits`` gives routes their own body cap (path -> bytes);
    multipart bodies to ``upload_paths`` are capped at ``max_upload_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Lifecycle,
        metrics: Metrics,
        *,
        max_concurrent: int,
        timeout_s: float,
        max_timeout_s: float,
        max_body_bytes: int,
        max_upload_bytes: int,
        max_receiving: int = 256,
        body_timeout_s: float = 10.0,
        min_body_rate: float = 32 * 1024,
        path_limits: Mapping[str, int] | None = None,
        upload_paths: Iterable[str] = (paths.CLASSIFY,),
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.max_concurrent = max_concurrent
        self.max_receiving = max_receiving
        self.timeout_s = timeout_s
        self.max_timeout_s = max_timeout_s
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        self.body_timeout_s = body_timeout_s
        self.min_body_rate = min_body_rate
        self.path_limits = dict(path_limits or {})
        self.upload_paths = frozenset(upload_paths)

    def _deadline(self, scope: Scope) -> float:
        raw = _header(scope, TIMEOUT_HEADER.encode())
        timeout = self.timeout_s
        if raw is not None:
            try:
                timeout = float(raw)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout < float("inf"):
                raise AvserveError(
                    f"{TIMEOUT_HEADER} must be a positive number of seconds", code="invalid_request"
                )
            timeout = min(timeout, self.max_timeout_s)
        return time.monotonic() + timeout

    def _limit(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        ctype = _header(scope, b"content-type") or ""
        if path in self.upload_paths and ctype.startswith("multipart/"):
            return self.max_upload
        return self.path_limits.get(path, self.max_body)

    def _refuse(self, e: AvserveError) -> ASGIApp:
        return error_response(
            e.code, e.message, retry_after_s=e.retry_after_s, metrics=self.metrics
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        lc = self.lifecycle
        is_work = (scope["method"], scope["path"].rstrip("/")) in WORK_ROUTES
        has_body = scope["method"] not in _BODYLESS
        limit = self._limit(scope)
        try:
            scope.setdefault("state", {})["deadline"] = self._deadline(scope)
            if is_work and lc.draining:
                raise AvserveError("server is shutting down", code="shutting_down", retry_after_s=1)
            declared = _header(scope, b"content-length")
            if has_body and declared is not None and declared.isdigit() and int(declared) > limit:
                raise AvserveError(f"request body exceeds {limit} bytes", code="too_large")
            if is_work and lc.receiving >= self.max_receiving:
                raise AvserveError(
                    f"too many request bodies arriving at once (limit {self.max_receiving})",
                    code="overloaded",
                    retry_after_s=1,
                )
        except AvserveError as e:
            await self._refuse(e)(scope, receive, send)
            return

        await _Exchange(self, scope, receive, send, is_work, has_body, limit).run()


class _Exchange:
    """One request behind the admission middleware: its slots, body guard and answer."""

    def __init__(
        self,
        mw: AdmissionMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        is_work: bool,
        has_body: bool,
        limit: int,
    ) -> None:
        self.mw, self.lc = mw, mw.lifecycle
        self.scope, self._receive, self._send = scope, receive, send
        self.is_work, self.has_body, self.limit = is_work, has_body, limit
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.seen = 0
        self.body_done = not has_body
        self.receiving = is_work and has_body  # holds a receive slot
        self.working = False  # holds a work slot
        self.refused: AvserveError | None = None
        self.timed_out = False
        self.response_started = False
        self.timer: asyncio.TimerHandle | None = None

    # -- the body deadline: one lazy timer, no per-chunk cost --------------------------------
    def _body_deadline(self) -> float:
        # Server-set: grows with the bytes received, never with the client's headers.
        return self.t0 + self.mw.body_timeout_s + self.seen / self.mw.min_body_rate

    def _on_timer(self, task: asyncio.Task[Any]) -> None:
        self.timer = None
        if self.body_done or self.response_started:
            return
        when = self._body_deadline()
        if when > self.loop.time() + 1e-3:  # the body made progress: look again then
            self.timer = self.loop.call_at(when, self._on_timer, task)
            return
        self.timed_out = True
        self.refused = AvserveError(
            f"the request body arrived too slowly (under {self.mw.min_body_rate:g} bytes/s)",
            code="body_timeout",
        )
        task.cancel()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- slots --------------------------------------------------------------------------------
    def _refuse(self, error: AvserveError) -> _Refused:
        self.refused = error
        return _Refused(error)

    def _admit(self) -> None:
        """The body is complete: give back the receive slot, take a work slot."""
        self._disarm()
        if self.receiving:
            self.receiving = False
            self.lc.receiving -= 1
        if not self.is_work:
            return
        if self.lc.work >= self.mw.max_concurrent:
            raise self._refuse(
                AvserveError(
                    f"too many concurrent requests (limit {self.mw.max_concurrent})",
                    code="overloaded",
                    retry_after_s=1,
                )
            )
        self.working = True
        self.lc.work += 1
        self.mw.metrics.in_flight.inc()

    # -- the app's receive and send -----------------------------------------------------------
    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()  # e.g. the classify route watching for a disconnect
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise self._refuse(
                AvserveError("the client closed the connection mid-body", code="client_closed")
            )
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise self._refuse(
                    AvserveError(f"request body exceeds {self.limit} bytes", code="too_large")
                )
            if not message.get("more_body", False):
                self.body_done = True
                self._admit()
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # the app's answer to a refused body is replaced in run()
        if message["type"] == "http.response.start":
            self.response_started = True
            self._disarm()  # answered without (all of) the body: the body phase is over
        await self._send(message)

    async def run(self) -> None:
        lc = self.lc
        lc.active += 1
        if self.receiving:
            lc.receiving += 1
        task = asyncio.current_task()
        assert task is not None
        try:
            if self.body_done:
                self._admit()  # no body to wait for (a bodyless work request)
            else:
                self.timer = self.loop.call_at(self._body_deadline(), self._on_timer, task)
            await self.mw.app(
                self.scope, self.receive if self.has_body else self._receive, self.send
            )
        except _Refused:
            pass  # ``refused`` says why
        except asyncio.CancelledError:
            if not self.timed_out:
                raise
            task.uncancel()  # our own body deadline, not a shutdown: answer 408 below
        except Exception:
            if self.refused is None:
                raise  # not ours: the request-context middleware answers 500
        finally:
            self._disarm()
            lc.active -= 1
            if self.receiving:
                lc.receiving -= 1
            if self.working:
                lc.work -= 1
                self.mw.metrics.in_flight.dec()
        if self.refused is not None and not self.response_started:
            await self.mw._refuse(self.refused)(self.scope, self._receive, self._send)
