"""Upload streaming: byte cap, empty uploads, and no temp file left behind on any failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.errors import MediaError
from service.media import removing, save_upload


async def chunks(*parts: bytes, delay_s: float = 0.0) -> AsyncIterator[bytes]:
    for part in parts:
        if delay_s:
            await asyncio.sleep(delay_s)
        yield part


async def test_upload_is_streamed_to_a_temp_file(tmp_path: Path) -> None:
    path = await save_upload(chunks(b"abc", b"", b"defg"), tmp_path, max_bytes=7)
    with removing(path) as kept:
        assert kept.read_bytes() == b"abcdefg" and kept.parent == tmp_path
    assert not path.exists()


async def test_upload_over_the_cap_is_refused_and_removed(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        await save_upload(chunks(b"x" * 600, b"x" * 600), tmp_path, max_bytes=1000)
    assert err.value.code == "too_large"
    assert not list(tmp_path.iterdir())


async def test_empty_upload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        await save_upload(chunks(), tmp_path, max_bytes=10)
    assert err.value.code == "empty_file"
    assert not list(tmp_path.iterdir())


async def test_failing_client_stream_leaves_no_file(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await save_upload(broken(), tmp_path, max_bytes=100)
    assert not list(tmp_path.iterdir())


async def test_cancelled_upload_leaves_no_file(tmp_path: Path) -> None:
    task = asyncio.ensure_future(
        save_upload(chunks(*[b"y" * 10] * 100, delay_s=0.01), tmp_path, max_bytes=10_000)
    )
    await asyncio.sleep(0.1)
    assert list(tmp_path.iterdir())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not list(tmp_path.iterdir())
