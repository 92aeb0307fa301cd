"""Audio windows: alignment with the video clock, mono mix, one-shot resampling to 16 kHz."""

from __future__ import annotations

from pathlib import Path

import av
import librosa
import numpy as np
import pytest

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
from service.media.audio import resample_many, to_mono
from tests.media.synth import AudioSpec, write_video

POLICY = MediaPolicy()
CLIP = ClipSpec(num_frames=16, sampling_rate=2, crop_size=32)  # 1.067 s


def clip_audio(path: Path, starts: list[float]) -> np.ndarray:
    info = probe(path, POLICY)
    box = CropBox(0, 0, info.video.width, info.video.height)
    return read_clips(path, info, [ClipWindow(s, box) for s in starts], CLIP, POLICY).audio


def peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_sample_rate_becomes_16k_with_the_same_pitch_and_level(
    tmp_path: Path, rate: int
) -> None:
    audio = AudioSpec(rate=rate, layout="mono", codec="pcm_s16le", freq=440.0, amplitude=0.5)
    path = write_video(tmp_path / "tone.mkv", frames=90, fps=30, audio=audio)
    out = clip_audio(path, [0.7])[0]
    assert out.size == CLIP.audio_samples
    assert peak_hz(out) == pytest.approx(440.0, abs=16000 / out.size)
    assert float(np.sqrt((out**2).mean())) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


def test_click_lands_on_its_sample_in_clip_and_snippet_windows(tmp_path: Path) -> None:
    audio = AudioSpec(rate=48000, layout="mono", codec="pcm_s16le", freq=None, clicks_s=(1.25,))
    path = write_video(tmp_path / "click.mkv", frames=75, fps=30, audio=audio)
    out = clip_audio(path, [0.5])[0]
    assert abs(int(np.argmax(np.abs(out))) - round(0.75 * 16000)) <= 2

    info = probe(path, POLICY)
    snippets = read_snippets(path, info, SnippetSpec(num_snippets=4, frame_size=16), POLICY)
    for centre, window in zip(snippets.times_s, snippets.audio, strict=True):
        start = centre - 0.5  # 1 s around the centre
        if start <= 1.25 < start + 1.0:
            assert abs(int(np.argmax(np.abs(window))) - round((1.25 - start) * 16000)) <= 2
        else:
            assert np.abs(window).max() < 0.01


def test_surround_is_mixed_to_the_mean_of_its_channels(tmp_path: Path) -> None:
    # tone on the front-left channel only: the mono mix carries 1/6 of it
    audio = AudioSpec(
        rate=48000, layout="5.1", codec="pcm_s16le", amplitude=0.6,
        channel_gains=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    )  # fmt: skip
    path = write_video(tmp_path / "surround.mkv", frames=60, fps=30, audio=audio)
    assert probe(path, POLICY).audio.channels == 6  # type: ignore[union-attr]
    out = clip_audio(path, [0.3])[0]
    assert float(np.sqrt((out**2).mean())) == pytest.approx(0.1 / np.sqrt(2), rel=0.03)


def test_window_matches_a_one_shot_reference_resampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    freqs = rng.uniform(200, 3000, size=3)
    audio = AudioSpec(rate=44100, layout="stereo", codec="aac", freq=float(freqs[0]))
    path = write_video(tmp_path / "aac.mp4", frames=120, fps=30, audio=audio)
    out = clip_audio(path, [1.5])[0]
    # reference: decode everything, mean of channels, resample the whole span with librosa
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray() for f in c.decode(audio=0)]
    native = np.concatenate(chunks, axis=1).mean(axis=0)
    span = native[round(1.5 * 44100) : round((1.5 + CLIP.duration_s) * 44100)]
    ref = librosa.resample(span, orig_sr=44100, target_sr=16000)[: out.size]
    inner = slice(200, -200)  # filter edges differ between resamplers
    corr = np.corrcoef(out[inner], ref[inner])[0, 1]
    assert corr > 0.99


def test_spans_beyond_the_audio_are_zero_padded(tmp_path: Path) -> None:
    audio = AudioSpec(rate=16000, layout="mono", codec="pcm_s16le", freq=300.0)
    # three frames: the clip is longer than the video, the audio ends with the video
    path = write_video(tmp_path / "short.mkv", frames=6, fps=30, audio=audio)
    out = clip_audio(path, [0.0])[0]
    assert out.size == CLIP.audio_samples
    assert np.abs(out[:1500]).max() > 0.3  # 0.2 s of tone (+ codec padding)
    assert not out[4000:].any()


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_windows_resampled_in_one_pass_do_not_leak_into_each_other(rate: int) -> None:
    rng = np.random.default_rng(rate)
    n = round(1.0 * rate)
    loud = (0.5 * rng.standard_normal(n)).astype(np.float32)
    click = np.zeros(n, np.float32)
    click[n // 2] = 1.0
    together = resample_many([loud, click, loud], rate, 16000, 16000)
    alone = resample_many([click], rate, 16000, 16000)[0]
    assert np.abs(together[1] - alone).max() < 1e-4  # the loud neighbours leave no trace
    assert abs(int(np.argmax(together[1])) - 8000) <= 1  # and the click stays in place


@pytest.mark.parametrize("fmt", ["u8", "u8p", "s16", "s16p", "s32", "s32p", "flt", "fltp", "dblp"])
@pytest.mark.parametrize("layout", ["mono", "stereo", "5.1"])
def test_mono_mix_reads_planes_as_the_stacked_array_mean_does(fmt: str, layout: str) -> None:
    frame = av.AudioFrame(format=fmt, layout=layout, samples=997)
    rng = np.random.default_rng(3)
    dtype = frame.to_ndarray().dtype
    for plane in frame.planes:
        n = plane.buffer_size // dtype.itemsize
        if dtype.kind == "f":
            values = rng.uniform(-1.0, 1.0, n).astype(dtype)
        else:
            values = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, n, dtype=dtype)
        plane.update(values.tobytes())
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    name = fmt.rstrip("p")
    scale = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0}.get(name, 1.0)
    shift = 128.0 if name == "u8" else 0.0
    expected = (data.astype(np.float32) - shift).mean(axis=0, dtype=np.float32) / scale
    np.testing.assert_array_equal(to_mono(frame), expected)
