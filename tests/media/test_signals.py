"""What decoding reports besides samples: digital silence, skipped packets, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    CropBox,
    MediaPolicy,
    SnippetSpec,
    probe,
    read_clips,
    read_snippets,
)
from service.media.signals import SILENCE_PEAK, is_silent, silence_to_zeros
from tests.media.synth import AudioSpec, write_video

POLICY = MediaPolicy()
SPEC = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)


def whole(path: Path) -> list[ClipWindow]:
    info = probe(path, POLICY)
    return [ClipWindow(0.0, CropBox(0, 0, info.video.width, info.video.height))]


def test_silence_threshold_is_minus_80_dbfs() -> None:
    assert 20 * np.log10(SILENCE_PEAK) == pytest.approx(-80.0)
    assert is_silent(np.zeros((2, 100), np.float32)) and is_silent(np.zeros((0, 0)))
    dither = np.full(100, 3.1e-5, np.float32)  # one 16-bit LSB
    assert is_silent(dither)
    assert not is_silent(np.r_[np.zeros(99), 0.001].astype(np.float32))
    zeroed, silent = silence_to_zeros(dither)
    assert silent and not zeroed.any()
    loud = np.full(4, 0.5, np.float32)
    same, silent = silence_to_zeros(loud)
    assert not silent and same is loud


def test_a_silent_track_is_flagged_and_zeroed_a_tone_is_not(tmp_path: Path) -> None:
    silent = write_video(tmp_path / "s.mp4", frames=60, audio=AudioSpec(freq=None))
    tone = write_video(tmp_path / "t.mp4", frames=60, audio=AudioSpec(amplitude=0.01))
    a = read_clips(silent, probe(silent, POLICY), whole(silent), SPEC, POLICY)
    b = read_clips(tone, probe(tone, POLICY), whole(tone), SPEC, POLICY)
    assert a.audio_present and a.audio_silent and not a.audio.any()
    assert b.audio_present and not b.audio_silent
    info = probe(silent, POLICY)
    snippets = read_snippets(silent, info, SnippetSpec(num_snippets=4), POLICY)
    assert snippets.audio_silent and not snippets.audio_usable


def test_no_audio_stream_is_not_silence(tmp_path: Path) -> None:
    mute = write_video(tmp_path / "m.mp4", frames=60)
    batch = read_clips(mute, probe(mute, POLICY), whole(mute), SPEC, POLICY)
    assert not batch.audio_present and not batch.audio_silent


def test_skipped_corrupt_packets_are_counted(media_dir: Path) -> None:
    path = media_dir / "decord__corrupted.mp4"  # MANIFEST: 49 of 50 frames, then bad NAL units
    info = probe(path, POLICY)
    late = ClipWindow(info.duration_s, CropBox(0, 0, 64, 64))
    batch = read_clips(path, info, [late], SPEC, POLICY)
    assert batch.decode_errors >= 1


def test_a_clean_file_reports_full_coverage_a_cut_one_less(media_dir: Path, tmp_path: Path) -> None:
    path = media_dir / "mdn-ie__flower.mp4"
    info = probe(path, POLICY)
    end = [ClipWindow(info.duration_s, CropBox(0, 0, 64, 64))]
    assert read_clips(path, info, end, SPEC, POLICY).coverage == 1.0
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.96)])
    batch = read_clips(cut, probe(cut, POLICY), end, SPEC, POLICY)
    assert POLICY.min_coverage <= batch.coverage < 0.99


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("torchcodec__nasa_13013.mp4", "MP4/MOV"),  # index (moov) at the end: any cut loses it
        ("moviepy__chaplin.mp4", "MP4/MOV"),
        ("mmaction2__test.avi", "AVI"),
    ],
)
def test_a_cut_file_that_starts_like_a_known_container_is_truncated_not_unknown(
    media_dir: Path, tmp_path: Path, name: str, family: str
) -> None:
    data = (media_dir / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 100])
    with pytest.raises(MediaError) as err:
        probe(cut, POLICY)
    assert err.value.code == "undecodable" and err.value.http_status == 422
    assert family in err.value.message and "truncated" in err.value.message
