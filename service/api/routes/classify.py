"""``POST /v1/classify``: a multipart upload (``file``) or JSON ``{"url": ...}`` plus options."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from service.api import paths
from service.api.deps import DeadlineDep, ServicesDep, TmpBudgetDep
from service.api.errors import COMMON_ERRORS, error_responses
from service.api.multipart_upload import receive_upload
from service.api.schemas import ClassifyUrlRequest
from service.api.tmp_budget import Reservation, TmpBudget
from service.errors import AvserveError, CapacityError
from service.media import remove_quietly
from service.notices import with_fetch_timing
from service.schemas import ClassifyOptions, ClassifyResult, Priority
from service.wiring import Services

router = APIRouter(tags=["classify"])

_CHUNK = 1 << 20
_OPTION_FIELDS = ClassifyOptions.model_json_schema()["properties"]
_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The video."},
                    **_OPTION_FIELDS,
                },
                "additionalProperties": False,
            },
            "encoding": {"file": {"contentType": "application/octet-stream"}},
        },
        "application/json": {"schema": ClassifyUrlRequest.model_json_schema()},
    },
}

CLASSIFY_ERRORS = error_responses(
    COMMON_ERRORS,
    {
        403: "URL points to a forbidden address (`url_forbidden`).",
        408: "Decoding or fetching took too long (`timeout`), or the request body arrived too "
        "slowly (`body_timeout`).",
        413: "Upload or video too large or too long (`too_large`, `too_long`).",
        415: "Unsupported container or codec.",
        422: "No video stream, undecodable or empty file, or unreachable URL.",
        507: "Temporary disk budget for uploads exhausted (`insufficient_storage`).",
    },
)


async def _save_upload(
    request: Request, dest: Path, max_bytes: int, reservation: Reservation
) -> tuple[Path, ClassifyOptions]:
    path, fields = await receive_upload(
        request.stream(),
        request.headers.get("content-type", ""),
        dest,
        max_bytes=max_bytes,
        reservation=reservation,
    )
    try:
        return path, ClassifyOptions.model_validate(fields)
    except BaseException:
        remove_quietly(path)
        raise


async def _read_json(request: Request) -> ClassifyUrlRequest:
    body = await request.body()
    try:
        return ClassifyUrlRequest.model_validate_json(body)
    except ValidationError:
        raise
    except ValueError as e:  # not JSON at all
        raise AvserveError(f"invalid JSON body: {e}", code="invalid_request") from e


async def _until_disconnect(request: Request) -> None:
    # Only called once the body has been consumed: the next message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _run(
    request: Request, work: Coroutine[Any, Any, ClassifyResult]
) -> ClassifyResult | None:
    """Run ``work``; cancel it (dropping its queued clips) if the client goes away. None then."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # our own cancellation: the deadline passed or the server stops
        task.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    # The client is gone: whatever the cancelled work ends with, nobody reads it.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


@router.post(
    paths.CLASSIFY,
    response_model=ClassifyResult,
    responses=CLASSIFY_ERRORS,
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Classify one video (upload or URL).",
)
async def classify(
    request: Request, services: ServicesDep, deadline: DeadlineDep, budget: TmpBudgetDep
) -> Any:
    settings = services.settings
    ctype = request.headers.get("content-type", "").lower()
    declared = request.headers.get("content-length", "")
    reservation = budget.reserve(int(declared) if declared.isdigit() else None)
    try:
        with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="avserve-") as tmp:
            result = await _classify(
                request, services, budget, Path(tmp), ctype, deadline, reservation
            )
    finally:
        reservation.release()  # the temp directory and the upload in it are gone
    if result is None:
        return Response(status_code=499)  # client closed the connection; nobody reads this
    return result


async def _classify(
    request: Request,
    services: Services,
    budget: TmpBudget,
    tmp: Path,
    ctype: str,
    deadline: float,
    reservation: Reservation,
) -> ClassifyResult | None:
    settings = services.settings
    try:
        async with asyncio.timeout(deadline - time.monotonic()):
            url: str | None = None
            path: Path | None = None
            if ctype.startswith("multipart/form-data"):
                path, options = await _save_upload(
                    request, tmp, settings.max_upload_bytes, reservation
                )
            elif ctype.startswith("application/json"):
                req = await _read_json(request)
                url = req.url
                options = ClassifyOptions.model_validate(req.model_dump(exclude={"url"}))
                # The download lands in the same temp dir: leave the free-space floor.
                budget.check_free(settings.fetch.max_bytes)
            else:
                raise AvserveError(
                    "send multipart/form-data with a `file` part, or application/json with a `url`",
                    code="invalid_request",
                )

            async def work() -> ClassifyResult:
                if url is None:
                    assert path is not None
                    return await services.classify(
                        path, options, priority=Priority.INTERACTIVE, deadline=deadline
                    )
                t0 = time.perf_counter()
                # The download counts against the disk budget, like an upload.
                video = await services.fetch(url, tmp, on_bytes=reservation.grow)
                fetch_s = time.perf_counter() - t0
                result = await services.classify(
                    video, options, priority=Priority.INTERACTIVE, deadline=deadline
                )
                return with_fetch_timing(result, fetch_s)

            return await _run(request, work())
    except TimeoutError:
        raise CapacityError("request deadline exceeded", code="deadline_exceeded") from None
