"""Frame sampling by timestamp: the right source frame for every requested instant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    CropBox,
    MediaInfo,
    MediaPolicy,
    SnippetSpec,
    probe,
    read_clips,
    read_snippets,
)
from tests.media.synth import read_index, write_video

POLICY = MediaPolicy()
# B-frames and a GOP of 12: decoding order differs from display order and seeks matter
BFRAMES = {"preset": "veryfast", "bf": "3", "g": "12", "keyint_min": "12", "sc_threshold": "0"}


def nearest(times: list[float], t: float) -> int:
    """Index of the frame nearest to t (ties go to the earlier frame)."""
    return min(range(len(times)), key=lambda i: (abs(times[i] - t), i))


def full_box(info: MediaInfo) -> CropBox:
    return CropBox(0, 0, info.video.width, info.video.height)


def clip_indices(path: Path, starts: list[float], spec: ClipSpec) -> list[list[int]]:
    info = probe(path, POLICY)
    clips = read_clips(path, info, [ClipWindow(s, full_box(info)) for s in starts], spec, POLICY)
    return [[read_index(f) for f in clip] for clip in clips.frames]


@pytest.fixture(scope="module")
def bframe_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sampling") / "bframes.mp4"
    return write_video(path, frames=150, fps=25, width=64, height=48, options=BFRAMES)


def test_clip_frames_are_nearest_on_a_30fps_grid_from_a_25fps_video(bframe_video: Path) -> None:
    spec = ClipSpec(num_frames=16, sampling_rate=2, crop_size=32)
    starts = [0.0, 2.3, 4.6]
    got = clip_indices(bframe_video, starts, spec)
    times = [i / 25 for i in range(150)]
    for start, clip in zip(starts, got, strict=True):
        want = [nearest(times, start + j * 2 / 30) for j in range(16)]
        assert clip == want


def test_window_order_does_not_change_the_frames(bframe_video: Path) -> None:
    spec = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)
    forward = clip_indices(bframe_video, [0.5, 3.9], spec)
    backward = clip_indices(bframe_video, [3.9, 0.5], spec)
    assert forward == backward[::-1]


def test_variable_frame_rate_is_sampled_by_timestamp(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    gaps = rng.uniform(0.02, 0.12, size=80)  # 8 to 50 fps, irregular
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]]).round(3).tolist()
    path = write_video(tmp_path / "vfr.mkv", frames=80, times_s=times, options={"g": "10"})
    spec = ClipSpec(num_frames=20, sampling_rate=1, target_fps=10.0, crop_size=32)
    info = probe(path, POLICY)
    starts = [0.0, info.duration_s / 2]
    got = clip_indices(path, starts, spec)
    for start, clip in zip(starts, got, strict=True):
        clamped = min(start, info.duration_s - spec.duration_s)
        assert clip == [nearest(times, clamped + j / 10) for j in range(20)]


def test_exact_snippets_take_the_frame_nearest_each_segment_centre(bframe_video: Path) -> None:
    info = probe(bframe_video, POLICY)
    spec = SnippetSpec(num_snippets=7, frame_size=32, frame_tolerance=0.0)
    snippets = read_snippets(bframe_video, info, spec, POLICY)
    times = [i / 25 for i in range(150)]
    centres = [(t + 0.5) * info.duration_s / 7 for t in range(7)]
    assert snippets.times_s.tolist() == pytest.approx(centres)
    assert [read_index(f) for f in snippets.frames] == [nearest(times, c) for c in centres]


def test_approximate_snippets_stay_within_tolerance_and_decode_less(tmp_path: Path) -> None:
    # 40 s at 10 fps with a keyframe every 2 s: snippets 2.5 s apart may use keyframes
    path = write_video(
        tmp_path / "long_gop.mp4",
        frames=400,
        fps=10,
        options=BFRAMES | {"g": "20", "keyint_min": "20"},
    )
    info = probe(path, POLICY)
    exact = read_snippets(path, info, SnippetSpec(16, 32, frame_tolerance=0.0), POLICY)
    approx = read_snippets(path, info, SnippetSpec(16, 32, frame_tolerance=0.25), POLICY)
    spacing = info.duration_s / 16
    offsets = np.abs(approx.extra["frame_times_s"] - approx.times_s)
    assert np.all(offsets <= 0.25 * spacing + 1e-6)
    # each frame is really the one decoded at its reported time (indices encode mod 256)
    assert [read_index(f) for f in approx.frames] == [
        round(t * 10) % 256 for t in approx.extra["frame_times_s"]
    ]
    assert approx.decoded_frames < exact.decoded_frames < 400


def test_clamped_windows_stay_inside_the_video(bframe_video: Path) -> None:
    info = probe(bframe_video, POLICY)
    spec = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)
    windows = [ClipWindow(s, full_box(info)) for s in (-3.0, 1.0, 99.0, float("nan"))]
    clips = read_clips(bframe_video, info, windows, spec, POLICY)
    starts = [w.start_s for w in clips.windows]
    assert starts == pytest.approx([0.0, 1.0, info.duration_s - spec.duration_s, 0.0])
    assert not any(w.padded for w in clips.windows)
    assert [w.end_s - w.start_s for w in clips.windows] == pytest.approx([spec.duration_s] * 4)


def test_video_shorter_than_a_clip_is_padded_with_its_last_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "three.mp4", frames=3, fps=30)
    info = probe(path, POLICY)
    spec = ClipSpec(num_frames=32, sampling_rate=2, crop_size=32)
    clips = read_clips(path, info, [ClipWindow(0.5, full_box(info))], spec, POLICY)
    window = clips.windows[0]
    assert window.padded and window.start_s == 0.0
    got = [read_index(f) for f in clips.frames[0]]
    assert got[:2] == [0, 2] and set(got[2:]) == {2}


def test_truncated_file_with_too_little_video_is_undecodable(tmp_path: Path) -> None:
    path = write_video(tmp_path / "full.mkv", frames=200, fps=20, width=96, height=64)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 3])  # the header still says 10 s
    info = probe(cut, POLICY)
    assert info.duration_s == pytest.approx(10.0, abs=0.1)
    spec = ClipSpec(num_frames=4, sampling_rate=2, crop_size=32)
    with pytest.raises(MediaError) as err:
        read_clips(cut, info, [ClipWindow(8.0, full_box(info))], spec, POLICY)
    assert err.value.code == "undecodable"
    # the part that is there is still usable
    early = read_clips(cut, info, [ClipWindow(0.5, full_box(info))], spec, POLICY)
    times = [i / 20 for i in range(200)]
    want = [nearest(times, 0.5 + j * 2 / 30) for j in range(4)]
    assert [read_index(f) for f in early.frames[0]] == want


def test_decode_budget_is_enforced(bframe_video: Path) -> None:
    info = probe(bframe_video, POLICY)
    tight = MediaPolicy(max_decoded_frames=5)  # the clip alone spans 13 frames
    spec = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)
    with pytest.raises(MediaError) as err:
        read_clips(bframe_video, info, [ClipWindow(5.0, full_box(info))], spec, tight)
    assert err.value.code == "too_large"


def test_wall_clock_budget_is_enforced(bframe_video: Path) -> None:
    info = probe(bframe_video, POLICY)
    spec = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)
    with pytest.raises(MediaError) as err:
        read_clips(
            bframe_video, info, [ClipWindow(2.0, full_box(info))], spec, MediaPolicy(max_wall_s=0.0)
        )
    assert err.value.code == "timeout"


def test_strided_clip_skips_unneeded_b_frames_and_stays_exact(tmp_path: Path) -> None:
    path = write_video(tmp_path / "b30.mp4", frames=150, fps=30, options=BFRAMES | {"g": "60"})
    spec = ClipSpec(num_frames=24, sampling_rate=2, crop_size=32)  # every other frame
    info = probe(path, POLICY)
    clips = read_clips(path, info, [ClipWindow(2.0, full_box(info))], spec, POLICY)
    times = [i / 30 for i in range(150)]
    assert [read_index(f) for f in clips.frames[0]] == [
        nearest(times, 2.0 + j * 2 / 30) for j in range(24)
    ]
    # the window spans 48 frames (plus the run-up from the keyframe at 2.0 s): the
    # non-reference frames between the taken ones were dropped before decoding
    assert clips.decoded_frames < 40
