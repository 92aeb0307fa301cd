"""Stream a ``multipart/form-data`` classify upload straight into one file under ``tmp_dir``.

Starlette's ``request.form()`` spools file parts to the *system* temp directory and the
caller then copies them: twice the disk, where the operator did not budget for it. Here the
body is parsed as it arrives (``python_multipart``) and the ``file`` part's bytes are written
once, into ``dest_dir``, each chunk counted against the disk budget before it is written.
Small text fields are kept in memory (bounded in number and size).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.api.tmp_budget import Reservation
from service.errors import AvserveError, MediaError
from service.media import remove_quietly

MAX_FIELDS = 16
MAX_FIELD_BYTES = 64 * 1024
_WRITE_BYTES = 1 << 20  # file bytes gathered before one write (one thread hop per MiB)


def _invalid(message: str) -> AvserveError:
    return AvserveError(message, code="invalid_request")


def _disposition(raw: bytes) -> tuple[str, bool]:
    """(field name, is a file part) from a Content-Disposition header."""
    kind, params = parse_options_header(raw)
    if kind != b"form-data" or b"name" not in params:
        raise _invalid("multipart part without a form-data name")
    return params[b"name"].decode("utf-8", "replace"), b"filename" in params


class _Parts:
    """``python_multipart`` callbacks: collect file bytes and fields of one feed."""

    def __init__(self) -> None:
        self.header_field = b""
        self.header_value = b""
        self.disposition = b""
        self.name = ""
        self.is_file = False
        self.field = bytearray()
        self.fields: dict[str, str] = {}
        self.file_parts = 0
        self.pending: list[bytes] = []  # file bytes parsed from the current chunk
        self.ended = False  # the closing boundary was seen

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.field = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        self.name, self.is_file = _disposition(self.disposition)
        if self.is_file:
            self.file_parts += 1
            if self.name != "file" or self.file_parts > 1:
                raise _invalid("the multipart body may hold one file, in the `file` part")
        elif self.name == "file":
            raise _invalid("the `file` part must be a file upload")
        elif len(self.fields) >= MAX_FIELDS:
            raise _invalid(f"at most {MAX_FIELDS} form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            self.pending.append(data[start:end])
            return
        self.field += data[start:end]
        if len(self.field) > MAX_FIELD_BYTES:
            raise _invalid(f"form field {self.name!r} is larger than {MAX_FIELD_BYTES} bytes")

    def on_end(self) -> None:
        self.ended = True

    def on_part_end(self) -> None:
        if not self.is_file:
            if self.name in self.fields:
                raise _invalid(f"form field {self.name!r} given twice")
            self.fields[self.name] = self.field.decode("utf-8", "replace")


def _boundary(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _invalid("multipart/form-data needs a boundary")
    return boundary


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    reservation: Reservation,
) -> tuple[Path, dict[str, str]]:
    """Parse the body; returns (path of the uploaded file, text fields).

    Raises ``invalid_request`` (malformed body, no file), ``too_large`` (file over
    ``max_bytes``), ``empty_file``, or ``insufficient_storage`` (disk budget). The file is
    removed on every failure, cancellation included.
    """
    parts = _Parts()
    callbacks = {
        name: getattr(parts, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(_boundary(content_type), callbacks)  # type: ignore[arg-type]
    fd, name = tempfile.mkstemp(prefix="avserve-upload-", suffix=".media", dir=dest_dir)
    path = Path(name)
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks:
                try:
                    parser.write(chunk)
                except MultipartParseError as e:
                    raise _invalid(f"malformed multipart body: {e}") from None
                if sum(map(len, parts.pending)) >= _WRITE_BYTES:
                    written += await _flush(parts, f, reservation, written, max_bytes)
            try:
                parser.finalize()
            except MultipartParseError as e:
                raise _invalid(f"malformed multipart body: {e}") from None
            written += await _flush(parts, f, reservation, written, max_bytes)
        if not parts.ended:  # a truncated body is not a shorter video
            raise _invalid("the multipart body ends before its closing boundary")
        if parts.file_parts == 0:
            raise _invalid("multipart body needs a `file` part")
        if written == 0:
            raise MediaError("the upload is empty", code="empty_file")
    except BaseException:
        remove_quietly(path)
        raise
    return path, parts.fields


async def _flush(
    parts: _Parts, f: IO[bytes], reservation: Reservation, written: int, max_bytes: int
) -> int:
    data = b"".join(parts.pending)
    parts.pending.clear()
    if not data:
        return 0
    if written + len(data) > max_bytes:
        raise MediaError(f"upload is larger than the limit of {max_bytes} bytes", code="too_large")
    reservation.grow(len(data))  # counted before it reaches the disk
    await asyncio.to_thread(f.write, data)
    return len(data)
