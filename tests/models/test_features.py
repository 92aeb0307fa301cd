"""The torch log-mel front end against librosa (the official AVSlowFast front end) on real audio."""

from __future__ import annotations

from pathlib import Path

import av
import librosa
import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.features import LogMelConfig, LogMelSpectrogram, mel_filterbank, nearest_frame_index


def _decode_mono(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """First ``max_seconds`` of the first audio stream, mixed to mono by channel mean (official)."""
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        planar = av.AudioResampler(format="fltp")  # [channels, samples] whatever the codec gives
        for frame in container.decode(stream):
            for out in planar.resample(frame):
                chunks.append(out.to_ndarray().astype(np.float64).mean(axis=0))
            if sum(len(c) for c in chunks) >= max_seconds * rate:
                break
    y = np.concatenate(chunks)[: int(max_seconds * rate)]
    return y, rate


@pytest.fixture(scope="module", params=["decord__flipping_a_pancake.mkv", "mdn-sa__guitar.ogg"])
def real_audio_16k(request: pytest.FixtureRequest, media_dir: Path) -> np.ndarray:
    y, rate = _decode_mono(media_dir / request.param, max_seconds=8.0)
    y16 = librosa.resample(y, orig_sr=rate, target_sr=16000)
    assert np.abs(y16).max() > 0.01, "the reference audio must not be silent"
    return y16


def _librosa_logmel(y: np.ndarray, cfg: LogMelConfig) -> np.ndarray:
    s = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=False,
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
        htk=cfg.htk,
    )
    return np.log(s + cfg.log_offset).T  # time-major like ours


def test_float64_logmel_matches_librosa_on_real_audio(real_audio_16k: np.ndarray) -> None:
    cfg = LogMelConfig()
    ours = LogMelSpectrogram(cfg).double()(torch.from_numpy(real_audio_16k)[None])[0].numpy()
    ref = _librosa_logmel(real_audio_16k, cfg)
    assert ours.shape == ref.shape == (cfg.frames_for(len(real_audio_16k)), 80)
    assert np.abs(ours - ref).max() <= 1e-3


def test_float32_logmel_matches_librosa_on_real_audio(real_audio_16k: np.ndarray) -> None:
    # float32 accumulation over 512 taps costs ~1e-4 in the log of quiet bands; still within 1e-3.
    cfg = LogMelConfig()
    wave = torch.from_numpy(real_audio_16k).float()[None]
    ours = LogMelSpectrogram(cfg)(wave)[0].numpy()
    assert np.abs(ours - _librosa_logmel(real_audio_16k, cfg)).max() <= 1e-3


@pytest.mark.parametrize(
    "cfg",
    [
        LogMelConfig(n_fft=512, win_length=400, hop_length=160, n_mels=64),  # window < n_fft
        LogMelConfig(n_fft=400, win_length=400, hop_length=160, n_mels=64, htk=False),
    ],
    ids=["padded-window", "slaney-scale"],
)
def test_other_front_end_settings_match_librosa(
    real_audio_16k: np.ndarray, cfg: LogMelConfig
) -> None:
    y = real_audio_16k[:32000]
    ours = LogMelSpectrogram(cfg).double()(torch.from_numpy(y)[None])[0].numpy()
    assert np.abs(ours - _librosa_logmel(y, cfg)).max() <= 1e-3


@pytest.mark.parametrize("htk", [True, False])
def test_mel_filterbank_equals_librosa(htk: bool) -> None:
    cfg = LogMelConfig(htk=htk)
    ref = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=80, fmin=0, fmax=8000, htk=htk, norm="slaney", dtype=np.float64
    )
    np.testing.assert_allclose(mel_filterbank(cfg).numpy(), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("num_out", [128, 100, 7])
def test_nearest_frame_index_is_the_official_linspace_truncation(num_out: int) -> None:
    for num_in in range(1, 400):
        official = np.linspace(0, num_in - 1, num_out).astype(int)
        np.testing.assert_array_equal(nearest_frame_index(num_in, num_out).numpy(), official)


def test_clip_audio_is_resampled_to_128_official_frames_then_normalised() -> None:
    cfg = LogMelConfig()
    wave = torch.randn(2, 34133, generator=torch.Generator().manual_seed(0)) * 0.1  # 2.13 s clip
    raw = LogMelSpectrogram(cfg)(wave)
    full = LogMelSpectrogram(cfg, normalize=True, to_num_frames=True)(wave)
    assert raw.shape == (2, cfg.frames_for(34133), 80) and full.shape == (2, 128, 80)
    idx = np.linspace(0, raw.shape[1] - 1, 128).astype(int)
    expected = (raw[:, idx] - (-7.03)) / 4.66
    torch.testing.assert_close(full, expected)


def test_half_precision_parent_keeps_the_front_end_in_float32() -> None:
    wave = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1
    ref = LogMelSpectrogram()(wave)
    half = LogMelSpectrogram().half()
    assert half.dft_basis.dtype == torch.float32 and half.mel_basis.dtype == torch.float32
    torch.testing.assert_close(half(wave.half()), ref, atol=0.05, rtol=0)


def test_short_or_misshapen_waveforms_are_refused() -> None:
    m = LogMelSpectrogram()
    with pytest.raises(ValueError, match="samples"):
        m(torch.zeros(1, 511))
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        m(torch.zeros(16000))


def test_inconsistent_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        LogMelConfig(win_length=1024)
    with pytest.raises(ValueError):
        LogMelConfig(f_max=9000.0)
    with pytest.raises(ValueError):
        LogMelConfig.from_dict({"n_mel": 80})


def test_torchscript_matches_eager() -> None:
    m = LogMelSpectrogram(LogMelConfig(), normalize=True, to_num_frames=True).eval()
    wave = torch.randn(2, 34133, generator=torch.Generator().manual_seed(2)) * 0.1
    torch.testing.assert_close(torch.jit.script(m)(wave), m(wave), atol=0, rtol=0)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript-exporter"])
def test_onnx_export_runs_in_onnxruntime_with_the_same_output(tmp_path: Path, dynamo: bool) -> None:
    m = LogMelSpectrogram(LogMelConfig(), normalize=True, to_num_frames=True).eval()
    gen = torch.Generator().manual_seed(3)
    wave = torch.randn(2, 34133, generator=gen) * 0.1
    path = tmp_path / "logmel.onnx"
    batch: dict = (
        {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}
        if dynamo
        else {"dynamic_axes": {"waveform": {0: "batch"}}}
    )
    torch.onnx.export(
        m, (wave,), str(path), input_names=["waveform"], output_names=["logmel"],
        opset_version=17, dynamo=dynamo, **batch,
    )  # fmt: skip
    other = torch.randn(3, 34133, generator=gen) * 0.1  # another batch size: the axis is dynamic
    other[1] = 0.0  # silence: the log offset must survive export (log(0) would be -inf)
    (got,) = ort.InferenceSession(str(path)).run(None, {"waveform": other.numpy()})
    assert got.shape == (3, 128, 80)
    assert np.isfinite(got).all()
    assert np.abs(got - m(other).numpy()).max() <= 1e-3
