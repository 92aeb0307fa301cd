"""Pure-ASGI middleware, outermost first: request context, API-key auth (then admission and
the body guard: ``service.api.admission``).

Pure ASGI (not ``BaseHTTPMiddleware``) so that uploads stream through untouched and a client
disconnect still reaches the endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import tracing
from service.api import paths
from service.api.errors import error_response
from service.api.logs import request_id_var
from service.metrics import Metrics
from service.queue.backend import ANONYMOUS

log = logging.getLogger("avserve.access")

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probe and scrape paths: always open, never counted as in-flight, logged at debug level.
OPEN_PREFIXES = (
    paths.HEALTH,
    f"{paths.V2}/models",
    paths.METRICS,
    "/docs",
    "/redoc",
    "/openapi.json",
    "/ui/",  # the web page's files (its API calls carry the key)
)
WORK_ROUTES = frozenset({("POST", paths.CLASSIFY), ("POST", paths.JOBS)})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_open(path: str) -> bool:
    return path == "/" or path.startswith(OPEN_PREFIXES)  # "/": the web page


def principal_for_key(key: str) -> str:
    """The stable id of an API key: jobs and idempotency keys belong to it. A hash prefix, so
    the key itself is never stored, logged or compared outside this module."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


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

        method = scope.get("method", "")
        path = scope.get("path", "")
        with tracing.server_span(method, path, scope.get("headers", ())) as span:
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
                route = scope.get("route")
                # Requests refused before routing keep a bounded label: their path only when it is
                # a known work route, else "unmatched" (never the raw path: label cardinality).
                template = getattr(route, "path", None) or (
                    path.rstrip("/") if (method, path.rstrip("/")) in WORK_ROUTES else "unmatched"
                )
                self.metrics.observe_request(template, method, status, elapsed)
                tracing.finish_server_span(span, method, template, status)
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
                        "principal": scope.get("state", {}).get("principal"),
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
        self.keys = [(k.encode(), principal_for_key(k)) for k in keys if k]
        self.metrics = metrics

    def _principal(self, scope: Scope) -> str | None:
        """The matching key's id, or None (no key, or a wrong one)."""
        offered = _header(scope, b"x-api-key")
        auth = _header(scope, b"authorization")
        if offered is None and auth is not None and auth[:7].lower() == "bearer ":
            offered = auth[7:].strip()
        if not offered:
            return None
        candidate = offered.encode("latin-1", "replace")
        found = None
        for key, principal in self.keys:
            if hmac.compare_digest(candidate, key):
                found = principal
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.keys:
            scope.setdefault("state", {})["principal"] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        principal = self._principal(scope)
        scope.setdefault("state", {})["principal"] = principal
        if principal is None:
            resp = error_response(
                "unauthorized", "missing or invalid API key", metrics=self.metrics
            )
            resp.headers["WWW-Authenticate"] = "Bearer"
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)
