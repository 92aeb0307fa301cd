"""Streaming uploads to temp files with a byte cap, and temp-file cleanup helpers.

The temp file is removed on every failure path, cancellation included (a client that
disconnects mid-upload cancels the task that iterates its chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.errors import MediaError


def remove_quietly(path: str | os.PathLike[str] | None) -> None:
    """Delete a temp file if it still exists (idempotent, never raises)."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


@contextmanager
def removing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``with removing(await save_upload(...)) as path:`` deletes the file afterwards."""
    try:
        yield Path(path)
    finally:
        remove_quietly(path)


async def save_upload(chunks: AsyncIterator[bytes], dest_dir: Path, max_bytes: int) -> Path:
    """Write an async byte stream to a new temp file under ``dest_dir``; returns its path.

    Raises MediaError ``too_large`` past ``max_bytes`` and ``empty_file`` for no bytes.
    """
    fd, name = tempfile.mkstemp(prefix="avserve-upload-", suffix=".media", dir=dest_dir)
    path = Path(name)
    total = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes:
                    raise MediaError(
                        f"upload is larger than the limit of {max_bytes} bytes", code="too_large"
                    )
                if chunk:
                    await asyncio.to_thread(f.write, chunk)
        if total == 0:
            raise MediaError("the upload is empty", code="empty_file")
    except BaseException:
        remove_quietly(path)
        raise
    return path
