"""Decoded frame → uint8 RGB arrays: rotation, crop and resize in one swscale pass.

Boxes arrive in display pixels of the probed size. Each frame is handled at its own decoded
size (streams may change resolution mid-way), so the box is scaled to that frame first. When
the box is at least as large as the output, the *whole* frame is scaled (YUV → RGB and resize in
one pass) so that the box becomes ``size`` pixels, then the box is sliced out; that is exactly
"resize, then crop" as in the official test protocol, and it never converts pixels that are
thrown away at full resolution. Smaller boxes (upscaling) are cropped first, then resized.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from service.media.types import CropBox, MediaInfo

_INTERP = "BILINEAR"  # PySlowFast resizes with bilinear interpolation


def _rgb(
    frame: av.VideoFrame, width: int, height: int, reformatter: VideoReformatter | None
) -> np.ndarray:
    """Scale + convert to RGB. A shared reformatter keeps its swscale context between frames
    (building one per frame costs more than the conversion itself)."""
    if reformatter is None:
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=_INTERP)
    out = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation=_INTERP
    )
    return out.to_ndarray()


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a coded-orientation image clockwise by ``rotation`` degrees for display."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-k)) if k else rgb


def squash(
    frame: av.VideoFrame, rotation: int, size: int, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """The whole frame resized to size×size (no crop, aspect ratio not kept), upright."""
    return _upright(_rgb(frame, size, size, reformatter), rotation)


def _coded_box(
    box: CropBox, info: MediaInfo, frame_w: int, frame_h: int
) -> tuple[float, float, float, float]:
    """Map a display-pixel box of the probed size onto this frame's coded pixels."""
    rot = info.video.rotation
    rotated = rot in (90, 270)
    disp_w, disp_h = (frame_h, frame_w) if rotated else (frame_w, frame_h)
    fx, fy = disp_w / info.video.width, disp_h / info.video.height
    x, y, w, h = box.x * fx, box.y * fy, box.w * fx, box.h * fy
    if rot == 90:  # display = coded turned clockwise
        return y, frame_h - x - w, h, w
    if rot == 180:
        return frame_w - x - w, frame_h - y - h, w, h
    if rot == 270:
        return frame_w - y - h, x, h, w
    return x, y, w, h


def _clip_span(start: float, length: int, limit: int) -> int:
    return int(min(max(round(start), 0), max(limit - length, 0)))


def crop_resize(
    frame: av.VideoFrame,
    info: MediaInfo,
    box: CropBox,
    size: int,
    reformatter: VideoReformatter | None = None,
) -> np.ndarray:
    """The box (display pixels) cut from the frame and resized to size×size, upright."""
    fw, fh = frame.width, frame.height
    x, y, w, h = _coded_box(box, info, fw, fh)
    w, h = max(w, 1.0), max(h, 1.0)
    if w >= size and h >= size:
        sx, sy = size / w, size / h
        # even sizes keep swscale on its fast paths (odd widths cost ~1.5x)
        rw, rh = max(round(fw * sx / 2) * 2, size), max(round(fh * sy / 2) * 2, size)
        rgb = _rgb(frame, rw, rh, reformatter)
        x0, y0 = _clip_span(x * sx, size, rw), _clip_span(y * sy, size, rh)
        out = rgb[y0 : y0 + size, x0 : x0 + size]
    else:
        rgb = _rgb(frame, fw, fh, reformatter)
        cw, ch = min(max(round(w), 1), fw), min(max(round(h), 1), fh)
        x0, y0 = _clip_span(x, cw, fw), _clip_span(y, ch, fh)
        crop = np.ascontiguousarray(rgb[y0 : y0 + ch, x0 : x0 + cw], dtype=np.uint8)
        patch = av.VideoFrame.from_ndarray(crop, format="rgb24")
        out = _rgb(patch, size, size, reformatter)
    return _upright(np.ascontiguousarray(out), info.video.rotation)
