"""Clip windows for the heavy model: frames on a fixed time grid, one crop box, same-span audio.

For each window the Fast frames are the instants start + j·sampling_rate/target_fps
(j < num_frames), each served by the nearest decoded frame by timestamp; the window's box is
cut from every frame and resized to ``crop_size``². Audio is exactly ``audio_samples`` of
16 kHz mono over [start, start + L). Starts are clamped to [0, D − L]; a video shorter than a
clip repeats its last frame (``padded``). All windows are decoded in one forward pass, so
overlapping windows (the dense protocol's 3 crops of each clip) share decoded frames.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from service.errors import AvserveError, MediaError
from service.media.audio import read_audio_windows
from service.media.container import Deadline, open_input, raise_media_error
from service.media.geometry import clamp_start
from service.media.imaging import crop_resize
from service.media.passes import read_frames
from service.media.policy import MediaPolicy
from service.media.types import (
    ClipBatch,
    ClipSpec,
    ClipWindow,
    CropBox,
    MediaInfo,
    ResolvedWindow,
)
from service.media.walk import Emit

_MAX_WINDOWS = 64
_MAX_FRAMES = 256
_MAX_CROP = 1024


def _check_spec(spec: ClipSpec, windows: int, policy: MediaPolicy) -> None:
    ok = (
        0 <= windows <= _MAX_WINDOWS
        and 1 <= spec.num_frames <= _MAX_FRAMES
        and spec.sampling_rate >= 1
        and 0 < spec.target_fps <= 1000
        and 1 <= spec.crop_size <= _MAX_CROP
        and spec.audio_sample_rate > 0
    )
    if not ok:
        raise AvserveError(
            f"clip request out of range ({windows} windows, {spec})", code="invalid_request"
        )
    size = windows * (spec.num_frames * spec.crop_size**2 * 3 + spec.audio_samples * 4)
    if size > policy.max_output_bytes:
        raise MediaError(
            f"clip request needs {size} bytes, more than {policy.max_output_bytes}",
            code="too_large",
        )


def inside(box: CropBox, info: MediaInfo) -> CropBox:
    """The box clamped into the display frame (at least one pixel)."""
    width, height = info.video.width, info.video.height
    w = min(max(box.w, 1), width)
    h = min(max(box.h, 1), height)
    return CropBox(min(max(box.x, 0), width - w), min(max(box.y, 0), height - h), w, h)


def snap_to_keyframe(start_s: float, tolerance_s: float, info: MediaInfo, clip_s: float) -> float:
    """The keyframe nearest ``start_s`` within ``tolerance_s`` at which a whole clip still fits,
    else ``start_s``. A clip that starts on a keyframe decodes nothing before its first frame;
    elsewhere the decoder runs up from the keyframe before it (up to a whole GOP)."""
    keyframes = info.video.keyframes_s
    if tolerance_s <= 0 or not keyframes or info.video.timing == "index":
        return start_s
    i = bisect.bisect_left(keyframes, start_s - tolerance_s)
    latest = max(info.duration_s - clip_s, 0.0)
    near = [
        k
        for k in keyframes[i : bisect.bisect_right(keyframes, start_s + tolerance_s)]
        if 0.0 <= k <= latest
    ]
    return min(near, key=lambda k: (abs(k - start_s), k)) if near else start_s


def resolve_windows(
    info: MediaInfo, windows: Sequence[ClipWindow], spec: ClipSpec
) -> list[ResolvedWindow]:
    clip_s = spec.duration_s
    padded = info.duration_s < clip_s
    out = []
    for w in windows:
        start = clamp_start(
            float(w.start_s) if np.isfinite(w.start_s) else 0.0, clip_s, info.duration_s
        )
        tolerance = float(w.start_tolerance_s) if np.isfinite(w.start_tolerance_s) else 0.0
        start = snap_to_keyframe(start, tolerance, info, clip_s)
        out.append(ResolvedWindow(start, start + clip_s, inside(w.box, info), padded))
    return out


def read_clips(
    path: Path,
    info: MediaInfo,
    windows: Sequence[ClipWindow],
    spec: ClipSpec,
    policy: MediaPolicy,
) -> ClipBatch:
    """Decode the requested clip windows of a probed file. Raises MediaError."""
    _check_spec(spec, len(windows), policy)
    deadline = Deadline(policy.max_wall_s)
    resolved = resolve_windows(info, windows, spec)
    count, size = spec.num_frames, spec.crop_size
    frames = np.zeros((len(resolved), count, size, size, 3), np.uint8)
    step = spec.sampling_rate / spec.target_fps
    instants = [r.start_s + j * step for r in resolved for j in range(count)]

    def make_emit() -> Emit:
        """One per decoder: a frame shared by instants of one window converts once."""
        converted: dict[int, tuple[av.VideoFrame, np.ndarray]] = {}  # window -> last one
        reformatter = VideoReformatter()

        def emit(i: int, t: float, frame: av.VideoFrame) -> None:
            k, j = divmod(i, count)
            cached = converted.get(k)
            if cached is None or cached[0] is not frame:
                cached = (frame, crop_resize(frame, info, resolved[k].box, size, reformatter))
                converted[k] = cached
            frames[k, j] = cached[1]

        return emit

    decoded = errors = 0
    coverage, silent = 1.0, False
    audio = np.zeros((len(resolved), spec.audio_samples), np.float32)
    if resolved:
        with open_input(path, policy) as container:
            try:
                stats, (audio, silent, audio_errors) = read_frames(
                    path, container, info, policy, deadline, instants, make_emit,
                    lambda: read_audio_windows(
                        container, info, policy, deadline,
                        [(r.start_s, r.end_s) for r in resolved],
                        spec.audio_sample_rate, spec.audio_samples,
                    ),
                )  # fmt: skip
                decoded, coverage = stats.decoded_frames, stats.coverage
                errors = stats.decode_errors + audio_errors
            except (MediaError, AvserveError):
                raise
            except Exception as e:
                raise_media_error(e, "reading clips")
    return ClipBatch(
        frames=frames,
        audio=audio,
        windows=resolved,
        audio_present=info.audio is not None,
        decoded_frames=decoded,
        audio_silent=silent,
        decode_errors=errors,
        coverage=coverage,
    )
