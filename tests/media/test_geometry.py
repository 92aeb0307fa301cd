"""Crop boxes and window placement: pure functions, checked against their definitions."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.media import (
    ClipSpec,
    MediaInfo,
    VideoStreamInfo,
    box_from_uv,
    center_box,
    dense_windows,
)
from service.media.imaging import crop_resize


def info_of(width: int, height: int, duration_s: float = 10.0) -> MediaInfo:
    video = VideoStreamInfo(0, "h264", width, height, width, height, 30.0, 0, duration_s, None)
    return MediaInfo("mp4", 1, duration_s, False, video, None, 1)


def gradient_frame(width: int, height: int) -> av.VideoFrame:
    """Smooth picture whose colour says where a pixel came from (x in red, y in green)."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (480, 270), (320, 568), (640, 640)])
def test_center_box_equals_resize_short_side_then_center_crop(width: int, height: int) -> None:
    info = info_of(width, height)
    frame = gradient_frame(width, height)
    scale = 256 / min(width, height)
    rw, rh = round(width * scale), round(height * scale)
    resized = frame.to_ndarray(format="rgb24", width=rw, height=rh, interpolation="BILINEAR")
    y0, x0 = math.ceil((rh - 224) / 2), math.ceil((rw - 224) / 2)
    reference = resized[y0 : y0 + 224, x0 : x0 + 224].astype(int)
    ours = crop_resize(frame, info, center_box(info, 256, 224), 224).astype(int)
    assert np.abs(ours - reference).mean() < 2.0


def official_centre(long: int, short: int) -> int:
    """PySlowFast: resize the short side to 256 (long side floored), offset ceil((L-256)/2),
    here mapped back to source pixels."""
    resized_long = math.floor(long / short * 256)
    return round(math.ceil((resized_long - 256) / 2) * short / 256)


def test_dense_windows_follow_the_official_ten_by_three_protocol() -> None:
    info = info_of(1280, 720, duration_s=12.0)
    spec = ClipSpec()  # 32 frames x 2 at 30 fps = 2.133 s
    windows = dense_windows(info, spec, short_side=256, crop=256)
    assert len(windows) == 30
    free = 12.0 - spec.duration_s
    starts = sorted({w.start_s for w in windows})
    assert starts == pytest.approx([free * i / 10 for i in range(10)])
    boxes = [w.box for w in windows[:3]]
    assert all(b.w == b.h == 720 for b in boxes)  # a 256 crop of a 256 short side
    assert [b.x for b in boxes] == [0, official_centre(1280, 720), 560]  # left/centre/right
    assert all(b.y == 0 for b in boxes)
    assert all(w.box == boxes[i % 3] for i, w in enumerate(windows))


def test_dense_crops_of_a_portrait_video_run_top_to_bottom() -> None:
    boxes = [w.box for w in dense_windows(info_of(360, 640), ClipSpec(), 256, 256)[:3]]
    assert [(b.x, b.w, b.h) for b in boxes] == [(0, 360, 360)] * 3
    assert [b.y for b in boxes] == [0, official_centre(640, 360), 280]


def test_dense_windows_of_a_short_video_all_start_at_zero() -> None:
    windows = dense_windows(info_of(640, 360, duration_s=1.0), ClipSpec())
    assert {w.start_s for w in windows} == {0.0}


def test_box_from_uv_corners_and_size() -> None:
    info = info_of(1280, 720)
    p = round(0.6 * 720)
    assert box_from_uv(info, 0.0, 0.0, 0.6).as_list() == [0, 0, p, p]
    assert box_from_uv(info, 1.0, 1.0, 0.6).as_list() == [1280 - p, 720 - p, p, p]
    centre = box_from_uv(info, 0.5, 0.5, 0.6)
    assert (centre.x, centre.y) == (round((1280 - p) / 2), round((720 - p) / 2))


def test_box_from_uv_survives_non_finite_policy_output() -> None:
    info = info_of(640, 360)
    assert box_from_uv(info, float("nan"), float("inf"), 0.5) == box_from_uv(info, 0.5, 0.5, 0.5)


@given(
    width=st.integers(16, 4096),
    height=st.integers(16, 4096),
    u=st.floats(-2, 3),
    v=st.floats(-2, 3),
    rho=st.floats(0.01, 1.5),
)
def test_boxes_are_always_squares_inside_the_frame(
    width: int, height: int, u: float, v: float, rho: float
) -> None:
    info = info_of(width, height)
    for box in (box_from_uv(info, u, v, rho), center_box(info, 256, 224)):
        assert box.w == box.h >= 1
        assert box.x >= 0 and box.x + box.w <= width
        assert box.y >= 0 and box.y + box.h <= height
