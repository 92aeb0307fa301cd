"""Pure helpers that place clips in time and crop boxes in space (no decoding).

Boxes are in display pixels of the source (after rotation). Resizing the whole frame so its
short side is ``short_side`` and then cropping ``crop`` squared equals cropping the box that
``center_box`` returns from the source and resizing that box to ``crop`` squared.
"""

from __future__ import annotations

import math

from service.media.types import ClipSpec, ClipWindow, CropBox, MediaInfo


def clamp_start(start_s: float, clip_s: float, duration_s: float) -> float:
    """Keep a clip of length ``clip_s`` inside [0, duration]; short videos start at 0."""
    return min(max(start_s, 0.0), max(duration_s - clip_s, 0.0))


def snippet_times(duration_s: float, num: int) -> list[float]:
    """Glance instants: the centres of ``num`` equal segments, c_t = (t + 0.5) * D / T."""
    return [(t + 0.5) * duration_s / num for t in range(num)]


def _fit(box_side: float, limit: int) -> int:
    if not math.isfinite(box_side):
        return limit
    return max(1, min(limit, round(box_side)))


def _box(info: MediaInfo, x: float, y: float, w: int, h: int) -> CropBox:
    width, height = info.video.width, info.video.height
    xi = min(max(round(x), 0), width - w)
    yi = min(max(round(y), 0), height - h)
    return CropBox(xi, yi, w, h)


def center_box(info: MediaInfo, short_side: int = 256, crop: int = 224) -> CropBox:
    """The box equal to "resize the short side to ``short_side``, centre-crop ``crop``²"."""
    width, height = info.video.width, info.video.height
    scale = min(width, height) / short_side  # source pixels per resized pixel
    side_w = _fit(crop * scale, width)
    side_h = _fit(crop * scale, height)
    return _box(info, (width - side_w) / 2, (height - side_h) / 2, side_w, side_h)


def spatial_crops(
    info: MediaInfo, short_side: int = 256, crop: int = 256, num_crops: int = 3
) -> list[CropBox]:
    """The official test-time crops: evenly spaced along the long side (left/centre/right).

    As PySlowFast's ``uniform_crop``: offsets 0, ceil((L - crop) / 2) and L - crop of the
    resized frame along its long side; the short side is centred.
    """
    width, height = info.video.width, info.video.height
    scale = min(width, height) / short_side
    side_w = _fit(crop * scale, width)
    side_h = _fit(crop * scale, height)
    horizontal = width >= height
    long_free = (width - side_w) if horizontal else (height - side_h)
    short_free = (height - side_h) if horizontal else (width - side_w)
    boxes = []
    for i in range(num_crops):
        if num_crops == 1:
            along = long_free / 2
        else:
            # ceil() on the resized grid, as the official code, mapped back to source pixels
            along = math.ceil(long_free / scale * i / (num_crops - 1)) * scale
        across = short_free / 2
        x, y = (along, across) if horizontal else (across, along)
        boxes.append(_box(info, x, y, side_w, side_h))
    return boxes


def dense_windows(
    info: MediaInfo,
    spec: ClipSpec,
    short_side: int = 256,
    crop: int = 256,
    num_clips: int = 10,
    num_crops: int = 3,
) -> list[ClipWindow]:
    """The official multi-view test protocol: ``num_clips`` × ``num_crops`` windows.

    Clip i starts at (D - L) · i / num_clips (PySlowFast ``get_start_end_idx``); each clip is
    paired with every spatial crop, clip-major.
    """
    clip_s = spec.duration_s
    free = max(info.duration_s - clip_s, 0.0)
    boxes = spatial_crops(info, short_side, crop, num_crops)
    return [
        ClipWindow(start_s=free * i / num_clips, box=box) for i in range(num_clips) for box in boxes
    ]


def box_from_uv(info: MediaInfo, u: float, v: float, rho: float) -> CropBox:
    """A square patch of side ρ·min(W, H) whose top-left corner is (u(W−p), v(H−p))."""
    width, height = info.video.width, info.video.height
    side = _fit(rho * min(width, height), min(width, height))
    # A policy network can emit NaN/inf; that must not crash decoding: fall back to the centre.
    u = min(max(u, 0.0), 1.0) if math.isfinite(u) else 0.5
    v = min(max(v, 0.0), 1.0) if math.isfinite(v) else 0.5
    return _box(info, u * (width - side), v * (height - side), side, side)
