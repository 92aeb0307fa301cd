"""Clip preprocessing: official Slow indices, normalisation, shapes, dtypes, export parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.features import LogMelConfig, LogMelSpectrogram
from models.preprocess import ClipInputs, ClipPreprocessor, PreprocessConfig


def _clip(batch: int = 2, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch, 32, size, size, 3), dtype=torch.uint8, generator=gen)
    audio = torch.randn(batch, PreprocessConfig().audio_samples, generator=gen) * 0.1
    return frames, audio


def test_slow_frames_are_the_official_subset_of_fast_frames() -> None:
    # Official: torch.linspace(0, 31, 32 // 8).long() == [0, 10, 20, 31].
    assert PreprocessConfig().slow_index().tolist() == [0, 10, 20, 31]
    assert PreprocessConfig(num_frames=64, alpha=8).slow_index().tolist() == [
        int(v) for v in np.linspace(0, 63, 8)
    ]
    frames, audio = _clip()
    # Tag every Fast frame with its own index so the Slow picks can be read back.
    frames[:] = torch.arange(32, dtype=torch.uint8).view(1, 32, 1, 1, 1) * 8
    slow, fast, _ = ClipPreprocessor()(frames, audio)
    picked = (slow[:, 0, :, 0, 0] * 0.225 + 0.45) * 255 / 8
    assert picked.round().long().tolist() == [[0, 10, 20, 31]] * 2
    torch.testing.assert_close(slow, fast[:, :, [0, 10, 20, 31]])


def test_frames_are_scaled_then_normalised_with_the_kinetics_statistics() -> None:
    frames, audio = _clip()
    frames[0, 0, 0, 0] = torch.tensor([0, 128, 255], dtype=torch.uint8)
    _, fast, _ = ClipPreprocessor()(frames, audio)
    expected = (torch.tensor([0.0, 128.0, 255.0]) / 255 - 0.45) / 0.225
    torch.testing.assert_close(fast[0, :, 0, 0, 0], expected)
    # Channel order is kept (RGB in, RGB out): a per-channel mean must apply to its own channel.
    cfg = PreprocessConfig(mean=(0.0, 0.5, 1.0), std=(1.0, 1.0, 1.0))
    _, fast2, _ = ClipPreprocessor(cfg)(frames, audio)
    torch.testing.assert_close(fast2[0, :, 0, 0, 0], torch.tensor([0.0, 128 / 255 - 0.5, 0.0]))


def test_outputs_have_the_avslowfast_input_shapes() -> None:
    frames, audio = _clip(batch=3, size=56)
    out = ClipPreprocessor()(frames, audio)
    assert isinstance(out, ClipInputs)
    assert out.slow.shape == (3, 3, 4, 56, 56)
    assert out.fast.shape == (3, 3, 32, 56, 56)
    assert out.audio.shape == (3, 1, 128, 80)
    assert out.fast.is_contiguous()


def test_audio_is_the_normalised_128_frame_logmel_of_the_clip_waveform() -> None:
    frames, audio = _clip()
    logmel = LogMelSpectrogram(LogMelConfig())(audio)
    idx = np.linspace(0, logmel.shape[1] - 1, 128).astype(int)
    _, _, out = ClipPreprocessor()(frames, audio)
    torch.testing.assert_close(out[:, 0], (logmel[:, idx] + 7.03) / 4.66)


@pytest.mark.parametrize("how", ["constructor", "half()"])
def test_half_precision_outputs_stay_close_to_float32(how: str) -> None:
    frames, audio = _clip()
    ref = ClipPreprocessor()(frames, audio)
    pre = (
        ClipPreprocessor(dtype=torch.float16) if how == "constructor" else ClipPreprocessor().half()
    )
    out = pre(frames, audio)
    assert all(t.dtype == torch.float16 for t in out)
    for got, want in zip(out, ref, strict=True):
        # fp16 keeps ~3 significant digits of values up to |2.5|.
        torch.testing.assert_close(got.float(), want, atol=5e-3, rtol=2e-3)


def test_float64_outputs_for_a_float64_preprocessor() -> None:
    frames, audio = _clip()
    out = ClipPreprocessor().double()(frames, audio)
    assert all(t.dtype == torch.float64 for t in out)


def test_malformed_inputs_are_refused_with_value_errors() -> None:
    frames, audio = _clip()
    pre = ClipPreprocessor()
    with pytest.raises(ValueError, match="frames"):
        pre(frames[:, :16], audio)
    with pytest.raises(ValueError, match="frames"):
        pre(frames[..., :1], audio)
    with pytest.raises(ValueError, match="audio"):
        pre(frames, audio[:1])


def test_config_round_trips_through_json_and_refuses_unknown_keys() -> None:
    cfg = PreprocessConfig(crop_size=160, audio=LogMelConfig(num_frames=None))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert PreprocessConfig.from_dict(d) == cfg
    assert PreprocessConfig.from_dict({}) == PreprocessConfig()
    with pytest.raises(ValueError, match="crop"):
        PreprocessConfig.from_dict({"crop": 224})
    with pytest.raises(ValueError):
        PreprocessConfig(alpha=0)


def test_clip_spec_describes_the_official_clip_span() -> None:
    cfg = PreprocessConfig()
    spec = cfg.clip_spec()
    assert spec == {
        "num_frames": 32,
        "sampling_rate": 2,
        "target_fps": 30.0,
        "crop_size": 224,
        "audio_sample_rate": 16000,
    }
    assert cfg.audio_samples == round(32 * 2 / 30 * 16000)


def test_torchscript_and_trace_match_eager() -> None:
    frames, audio = _clip()
    pre = ClipPreprocessor().eval()
    ref = pre(frames, audio)
    for compiled in (torch.jit.script(pre), torch.jit.trace(pre, (frames, audio))):
        for got, want in zip(compiled(frames, audio), ref, strict=True):
            torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_onnx_export_runs_in_onnxruntime_with_the_same_output(tmp_path: Path) -> None:
    frames, audio = _clip(batch=2)
    pre = ClipPreprocessor().eval()
    path = tmp_path / "pre.onnx"
    torch.onnx.export(
        pre, (frames, audio), str(path), input_names=["frames", "audio"],
        output_names=["slow", "fast", "audio_logmel"], opset_version=17, dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")}, {0: torch.export.Dim("batch")}),
    )  # fmt: skip
    frames1, audio1 = _clip(batch=1, seed=5)
    got = ort.InferenceSession(str(path)).run(
        None, {"frames": frames1.numpy(), "audio": audio1.numpy()}
    )
    for g, want in zip(got, pre(frames1, audio1), strict=True):
        assert g.shape == tuple(want.shape)
        assert np.abs(g - want.numpy()).max() <= 1e-3
