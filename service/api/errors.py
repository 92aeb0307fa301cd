"""Every failure leaves the API as ``{"error": {"code", "message", "request_id"}}``.

The status comes from ``service.errors.HTTP_STATUS`` (one table for all layers); capacity errors
carry ``Retry-After``. Unknown exceptions become ``500 internal`` with no traceback in the body
(the traceback goes to the log with the request id).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.api.logs import request_id_var
from service.errors import HTTP_STATUS, AvserveError
from service.metrics import Metrics
from service.schemas import ErrorResponse

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
}


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    rid = request_id if request_id is not None else request_id_var.get()
    return {"error": {"code": code, "message": message, "request_id": rid}}


def error_response(
    code: str,
    message: str,
    *,
    status: int | None = None,
    retry_after_s: float | None = None,
    metrics: Metrics | None = None,
) -> JSONResponse:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    if metrics is not None:
        metrics.error(code)
    return JSONResponse(
        error_body(code, message),
        status_code=status if status is not None else HTTP_STATUS.get(code, 500),
        headers=headers,
    )


def _metrics(request: Request) -> Metrics | None:
    return getattr(request.app.state, "metrics", None)


def _validation_message(errors: list[Any]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


async def _avserve(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AvserveError)
    if exc.http_status >= 500 and exc.code not in ("shutting_down", "not_ready"):
        log.error("request failed: %s", exc.code, exc_info=exc)
    retry = exc.retry_after_s
    if retry is None and exc.http_status in (429, 503):
        retry = 1.0
    return error_response(exc.code, exc.message, retry_after_s=retry, metrics=_metrics(request))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError | ValidationError) else []
    return error_response(
        "invalid_request", _validation_message(list(errors)), metrics=_metrics(request)
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "invalid_request" if exc.status_code < 500 else "internal"
    )
    resp = error_response(code, str(exc.detail), status=exc.status_code, metrics=_metrics(request))
    if exc.headers:
        resp.headers.update(exc.headers)
    return resp


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    # A client abort, not a server error: its own code, no traceback, never `internal`.
    return error_response(
        "client_closed", "the client closed the connection", metrics=_metrics(request)
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return error_response("internal", "internal server error", metrics=_metrics(request))


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AvserveError, _avserve)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)


# Shared descriptions of the error answers most routes may give (OpenAPI documentation).
COMMON_ERRORS: dict[int, str] = {
    400: "Invalid request (`invalid_request`).",
    401: "Missing or wrong API key (`unauthorized`).",
    404: "Unknown model or resource.",
    413: "Body too large.",
    422: "Request understood but not processable.",
    429: "Overloaded (`overloaded`): retry after the `Retry-After` seconds.",
    500: "Internal error (no details leak).",
    503: "Not ready or shutting down.",
    504: "Deadline exceeded (`deadline_exceeded`).",
}


def error_responses(
    common: Iterable[int] = (), described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the ``common`` statuses with their shared descriptions, plus
    route-specific ``described`` ones (which win), each in the one error shape."""
    docs = {status: COMMON_ERRORS[status] for status in common} | dict(described or {})
    return {
        status: {"model": ErrorResponse, "description": text}
        for status, text in sorted(docs.items())
    }
