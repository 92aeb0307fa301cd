"""Rotation metadata: display size swapped and pixels delivered upright."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from service.media import CropBox, MediaPolicy, SnippetSpec, probe, read_snippets
from service.media.imaging import crop_resize
from tests.media.synth import write_video

POLICY = MediaPolicy()


def tkhd_clockwise_degrees(path: Path) -> int:
    """Rotation from the QuickTime track header matrix, read straight from the file.

    x' = a·x + c·y, y' = b·x + d·y with y pointing down, so atan2(b, a) is the clockwise angle.
    """
    data = path.read_bytes()
    at = data.index(b"tkhd") + 4
    version = data[at]
    matrix_at = at + 4 + (32 if version == 1 else 20) + 16
    a, b = struct.unpack(">ii", data[matrix_at : matrix_at + 8])
    return round(math.degrees(math.atan2(b / 65536, a / 65536))) % 360


@pytest.mark.parametrize("name", ["decord__video_90.mov", "decord__video_270.mov"])
def test_rotation_matches_the_track_header_matrix(media_dir: Path, name: str) -> None:
    path = media_dir / name
    info = probe(path, POLICY)
    assert info.video.rotation == tkhd_clockwise_degrees(path) != 0
    assert (info.video.width, info.video.height) == (
        info.video.coded_height,
        info.video.coded_width,
    )


@pytest.mark.parametrize("name", ["decord__video_90.mov", "decord__video_270.mov"])
def test_real_rotated_frames_come_out_turned_by_the_header_angle(
    media_dir: Path, name: str
) -> None:
    path = media_dir / name
    info = probe(path, POLICY)
    with av.open(str(path)) as c:
        coded = next(c.decode(video=0))
    box = CropBox(0, 0, info.video.width, info.video.height)
    ours = crop_resize(coded, info, box, 64).astype(int)
    raw = coded.to_ndarray(format="rgb24")
    turned = np.rot90(raw, k=-info.video.rotation // 90)  # clockwise
    reference = av.VideoFrame.from_ndarray(np.ascontiguousarray(turned), format="rgb24")
    ref = reference.to_ndarray(format="rgb24", width=64, height=64, interpolation="BILINEAR")
    assert np.abs(ours - ref.astype(int)).mean() < 3.0


@pytest.mark.parametrize(("ccw", "cw"), [(-90, 90), (90, 270), (180, 180)])
def test_rotated_synthetic_video_is_upright(tmp_path: Path, ccw: int, cw: int) -> None:
    # coded frames: left half dark (index 0 -> level 8), right half level 8+16*i
    path = write_video(tmp_path / "rot.mp4", frames=4, width=96, height=64, rotation=ccw)
    info = probe(path, POLICY)
    assert info.video.rotation == cw
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    coded = frames[3]
    w, h = info.video.width, info.video.height
    # where the coded left half ends up on screen after a clockwise turn
    left_side = {90: CropBox(0, 0, w, h // 2), 270: CropBox(0, h // 2, w, h - h // 2),
                 180: CropBox(w // 2, 0, w - w // 2, h)}[cw]  # fmt: skip
    patch = crop_resize(coded, info, left_side, 16)
    assert abs(float(patch.mean()) - 8.0) < 4.0  # the dark left half (index 3 -> right 56)
    snippets = read_snippets(path, info, SnippetSpec(num_snippets=1, frame_size=32), POLICY)
    assert snippets.frames.shape == (1, 32, 32, 3)
