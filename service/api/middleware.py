"""Pure-ASGI middleware, outermost first: request context, API-key auth, admission, body cap.

Pure ASGI (not ``BaseHTTPMiddleware``) so that uploads stream through untouched and a client
disconnect still reaches the endpoint.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_response
from service.api.lifecycle import Lifecycle
from service.api.logs import request_id_var
from service.errors import AvserveError
from service.metrics import Metrics

log = logging.getLogger("avserve.access")

REQUEST_ID_HEADER = "x-request-id"
TIMEOUT_HEADER = "x-request-timeout"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probe and scrape paths: always open, never counted as in-flight, logged at debug level.
OPEN_PREFIXES = ("/v2/health", "/v2/models", "/metrics", "/docs", "/redoc", "/openapi.json")
WORK_ROUTES = frozenset({("POST", "/v1/classify"), ("POST", "/v1/jobs")})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_open(path: str) -> bool:
    return path.startswith(OPEN_PREFIXES)


class RequestContextMiddleware:
    """Request id (``X-Request-ID`` in or generated, echoed out), one JSON access line per
    request, request metrics, and a last-resort 500 in the error shape (no traceback)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        rid = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = False
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error")
            if not started:
                await error_response("internal", "internal server error", metrics=self.metrics)(
                    scope, receive, send_wrapper
                )
        finally:
            elapsed = time.perf_counter() - t0
            method = scope.get("method", "")
            path = scope.get("path", "")
            route = scope.get("route")
            # Requests refused before routing keep a bounded label: their path only when it is
            # a known work route, else "unmatched" (never the raw path: label cardinality).
            template = getattr(route, "path", None) or (
                path.rstrip("/") if (method, path.rstrip("/")) in WORK_ROUTES else "unmatched"
            )
            self.metrics.observe_request(template, method, status, elapsed)
            log.log(
                logging.DEBUG if _is_open(path) else logging.INFO,
                "%s %s %d",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)


class ApiKeyMiddleware:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` on every non-open path.

    Keys are compared in constant time against every configured key (no early exit), so the
    response time does not reveal which key or prefix matched.
    """

    def __init__(self, app: ASGIApp, keys: Iterable[str], metrics: Metrics | None = None) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys if k]
        self.metrics = metrics

    def _authorised(self, scope: Scope) -> bool:
        offered = _header(scope, b"x-api-key")
        auth = _header(scope, b"authorization")
        if offered is None and auth is not None and auth[:7].lower() == "bearer ":
            offered = auth[7:].strip()
        if not offered:
            return False
        candidate = offered.encode("latin-1", "replace")
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(candidate, key)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self._authorised(scope):
            resp = error_response(
                "unauthorized", "missing or invalid API key", metrics=self.metrics
            )
            resp.headers["WWW-Authenticate"] = "Bearer"
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


class AdmissionMiddleware:
    """Draining (503), the work-request concurrency cap (429) and per-request deadlines.

    Every non-open request counts as active (a drain waits for it); work requests also count
    against ``max_concurrent``. The deadline (absolute ``time.monotonic()``) goes to
    ``request.state.deadline``: the default timeout, or ``X-Request-Timeout`` seconds capped at
    ``max_timeout_s``.
    """

    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Lifecycle,
        metrics: Metrics,
        *,
        max_concurrent: int,
        timeout_s: float,
        max_timeout_s: float,
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.max_concurrent = max_concurrent
        self.timeout_s = timeout_s
        self.max_timeout_s = max_timeout_s

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        lc = self.lifecycle
        is_work = (scope["method"], scope["path"].rstrip("/")) in WORK_ROUTES
        try:
            scope.setdefault("state", {})["deadline"] = self._deadline(scope)
            if is_work and lc.draining:
                raise AvserveError("server is shutting down", code="shutting_down", retry_after_s=1)
            if is_work and lc.work >= self.max_concurrent:
                raise AvserveError(
                    f"too many concurrent requests (limit {self.max_concurrent})",
                    code="overloaded",
                    retry_after_s=1,
                )
        except AvserveError as e:
            resp = error_response(
                e.code, e.message, retry_after_s=e.retry_after_s, metrics=self.metrics
            )
            await resp(scope, receive, send)
            return
        lc.active += 1
        if is_work:
            lc.work += 1
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            lc.active -= 1
            if is_work:
                lc.work -= 1
                self.metrics.in_flight.dec()


class BodyLimitMiddleware:
    """Refuse bodies over the cap with 413 ``too_large``: early on ``Content-Length``, else
    while streaming (the app's own answer is then replaced by the 413)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        upload_paths: Iterable[str] = ("/v1/classify",),
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        self.upload_paths = frozenset(upload_paths)

    def _too_large(self, limit: int) -> ASGIApp:
        msg = f"request body exceeds {limit} bytes"
        return error_response("too_large", msg, metrics=self.metrics)

    def _limit(self, scope: Scope) -> int:
        ctype = _header(scope, b"content-type") or ""
        if scope["path"].rstrip("/") in self.upload_paths and ctype.startswith("multipart/"):
            return self.max_upload
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        seen = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise AvserveError(f"request body exceeds {limit} bytes", code="too_large")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the app's answer to a truncated body is replaced by the 413 below
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await self._too_large(limit)(scope, receive, send)
