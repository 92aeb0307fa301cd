"""Opening untrusted media safely, and turning FFmpeg failures into typed errors.

The file is handed to FFmpeg as a Python file object, so FFmpeg never resolves a path or URL
itself. On top of that: a demuxer allow-list (``format_whitelist``), ``protocol_whitelist=file``,
an ``io_open`` hook that refuses every nested open (playlists, concat scripts, reference
movies), open/read timeouts through FFmpeg's interrupt callback, capped probing, a stream cap
and the decoders' ``max_pixels`` cap (also applied while FFmpeg probes stream parameters).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import av
import av.error

from service.errors import MediaError
from service.media.policy import MediaPolicy


class Deadline:
    """Wall-clock budget of one job; decode loops call :meth:`check` once per packet/frame."""

    def __init__(self, seconds: float, end: float | None = None) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds if end is None else end
        self._cancelled = False

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def child(self) -> Deadline:
        """The same budget, cancellable on its own (for work running beside the caller's)."""
        return Deadline(self.seconds, self._end)

    def cancel(self) -> None:
        """Make every later :meth:`check` fail: the work is no longer wanted."""
        self._cancelled = True

    def check(self) -> None:
        if self._cancelled:
            raise MediaError("decoding was cancelled", code="cancelled")
        if time.monotonic() > self._end:
            raise MediaError(f"decoding took longer than {self.seconds:g} s", code="timeout")


def _refuse_nested_open(url: str, flags: int, options: dict[str, Any]) -> NoReturn:
    # Called by FFmpeg whenever a demuxer tries to open another resource (HLS segment, concat
    # entry, GAB2 subtitle playlist, ...). Input media must be self-contained.
    raise MediaError(
        "the file references other resources, which are never opened",
        code="unsupported_container",
    )


def container_family(fobj: Any) -> str | None:
    """The container family the first bytes announce (MP4/MOV, Matroska/WebM, AVI, Ogg), or
    None. Used only to choose the better error for a file FFmpeg could not open: one that
    starts like a known container but has a damaged or missing header is truncated or corrupt
    (422), not an unknown format (415)."""
    try:
        fobj.seek(0)
        head = fobj.read(12)
    except OSError:
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "an MP4/MOV file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI file"
    if head[:4] == b"OggS":
        return "an Ogg file"
    return None


def format_names(container: av.container.InputContainer) -> set[str]:
    """FFmpeg's demuxer name is a comma list ("mov,mp4,m4a,3gp,3g2,mj2")."""
    return {n.strip() for n in container.format.name.split(",")}


@contextmanager
def open_input(path: Path, policy: MediaPolicy) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for demuxing under ``policy``; raises MediaError on any refusal."""
    try:
        fobj = open(path, "rb")  # noqa: SIM115 - closed below, after the container
    except OSError as e:
        raise MediaError(f"cannot read the media file: {e.strerror}", code="undecodable") from e
    try:
        size = path.stat().st_size
        if size == 0:
            raise MediaError("the file is empty", code="empty_file")
        if size > policy.max_bytes:
            raise MediaError(
                f"file is {size} bytes, more than the limit of {policy.max_bytes}",
                code="too_large",
            )
        container_options = {
            "format_whitelist": ",".join(policy.allowed_formats),
            "protocol_whitelist": "file",
            "probesize": str(policy.probesize),
            "analyzeduration": str(policy.analyzeduration),
            # FFmpeg's own stream cap; the policy's (smaller) one is checked after opening with
            # a clear error, this one only stops a header from allocating thousands of streams.
            "max_streams": str(max(policy.max_streams * 2, 8)),
        }
        try:
            container = av.open(
                fobj,
                mode="r",
                container_options=container_options,
                # ``options`` also reach the decoders FFmpeg opens while probing parameters.
                options={"max_pixels": str(policy.max_pixels)},
                timeout=(policy.open_timeout_s, policy.read_timeout_s),
                io_open=_refuse_nested_open,
            )
        except MediaError:
            raise
        except av.error.ArgumentError as e:  # "format not on whitelist" is EINVAL
            raise MediaError(
                "unsupported or unrecognised container format", code="unsupported_container"
            ) from e
        except av.error.InvalidDataError as e:
            family = container_family(fobj)
            if family is not None:  # a known container whose header or index is damaged
                raise MediaError(
                    f"the file starts like {family} but its header or index cannot be read: "
                    "it is probably truncated (an incomplete upload or download) or corrupt",
                    code="undecodable",
                ) from e
            raise MediaError(
                "not a recognised media file (no known container format)",
                code="unsupported_container",
            ) from e
        except Exception as e:
            raise_media_error(e, "opening the file")
        try:
            if not format_names(container) & set(policy.allowed_formats):
                raise MediaError(
                    f"container {container.format.name!r} is not allowed",
                    code="unsupported_container",
                )
            yield container
        finally:
            container.close()
    finally:
        fobj.close()


def configure_decoder(stream: av.stream.Stream, policy: MediaPolicy) -> None:
    """Apply the pixel cap and threading before the decoder is first opened."""
    cc = stream.codec_context
    cc.options = {"max_pixels": str(policy.max_pixels)}
    if stream.type == "video":
        cc.thread_type = "AUTO"
        cc.thread_count = policy.decoder_threads


def raise_media_error(exc: BaseException, doing: str) -> NoReturn:
    """Map an exception from PyAV/FFmpeg to a MediaError with a stable code."""
    if isinstance(exc, MediaError):
        raise exc
    if isinstance(exc, av.error.ExitError | TimeoutError):
        raise MediaError(f"timed out while {doing}", code="timeout") from exc
    if isinstance(exc, MemoryError | av.error.MemoryError):
        raise MediaError(f"out of memory while {doing}", code="too_large") from exc
    if isinstance(exc, av.error.DecoderNotFoundError | av.error.PatchWelcomeError):
        raise MediaError(
            f"unsupported codec feature while {doing}", code="unsupported_codec"
        ) from exc
    raise MediaError(f"undecodable media while {doing}: {exc}", code="undecodable") from exc
