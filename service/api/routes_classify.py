"""``POST /v1/classify``: a multipart upload (``file``) or JSON ``{"url": ...}`` plus options."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from service.api.errors import COMMON_ERRORS, _resp
from service.api.responses import ClassifyUrlRequest
from service.api.services import Services
from service.errors import AvserveError, CapacityError
from service.media import save_upload
from service.schemas import ClassifyOptions, ClassifyResult, Priority

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

CLASSIFY_ERRORS = {
    **COMMON_ERRORS,
    403: _resp("URL points to a forbidden address (`url_forbidden`)."),
    408: _resp("Decoding or fetching took too long (`timeout`)."),
    413: _resp("Upload or video too large or too long (`too_large`, `too_long`)."),
    415: _resp("Unsupported container or codec."),
    422: _resp("No video stream, undecodable or empty file, or unreachable URL."),
}


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


async def _save_upload(
    request: Request, dest: Path, max_bytes: int
) -> tuple[Path, ClassifyOptions]:
    async with request.form(max_files=1, max_fields=16, max_part_size=64 * 1024) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise AvserveError("multipart body needs a `file` part", code="invalid_request")
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == "file":
                continue
            if not isinstance(value, str):
                raise AvserveError(f"form field {key!r} must not be a file", code="invalid_request")
            fields[key] = value
        options = ClassifyOptions.model_validate(fields)
        path = await save_upload(_chunks(upload), dest, max_bytes)
    return Path(path), options


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
    "/v1/classify",
    response_model=ClassifyResult,
    responses=CLASSIFY_ERRORS,
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Classify one video (upload or URL).",
)
async def classify(request: Request) -> Any:
    services: Services = request.app.state.services
    settings = services.settings
    deadline: float = request.state.deadline
    ctype = request.headers.get("content-type", "").lower()
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="avserve-") as tmp:
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                url: str | None = None
                path: Path | None = None
                if ctype.startswith("multipart/form-data"):
                    path, options = await _save_upload(
                        request, Path(tmp), settings.max_upload_bytes
                    )
                elif ctype.startswith("application/json"):
                    req = await _read_json(request)
                    url = str(req.url)
                    options = ClassifyOptions.model_validate(req.model_dump(exclude={"url"}))
                else:
                    raise AvserveError(
                        "send multipart/form-data with a `file` part, or application/json with a "
                        "`url`",
                        code="invalid_request",
                    )

                async def work() -> ClassifyResult:
                    video = await services.fetch(url, Path(tmp)) if url is not None else path
                    assert video is not None
                    return await services.classifier.classify(
                        video, options, priority=Priority.INTERACTIVE, deadline=deadline
                    )

                result = await _run(request, work())
        except TimeoutError:
            raise CapacityError("request deadline exceeded", code="deadline_exceeded") from None
    if result is None:
        return Response(status_code=499)  # client closed the connection; nobody reads this
    return result
