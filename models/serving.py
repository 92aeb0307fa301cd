"""``ServingModel``: preprocessing + network in one graph (what runtimes run and exports hold).

``forward(frames uint8 [B, T_f, S, S, 3], audio float32 [B, N]) -> logits float32 [B, C]``.
Every model takes both inputs so that runtimes have one contract; a visual-only model ignores
the waveform and an audio-only model ignores the frames.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from models.avslowfast import AVSlowFast
from models.configs import AVSlowFastConfig
from models.preprocess import ClipPreprocessor, PreprocessConfig


class ServingModel(nn.Module):
    input_names: tuple[str, str] = ("frames", "audio")
    output_names: tuple[str] = ("logits",)

    def __init__(self, preprocessor: ClipPreprocessor, model: AVSlowFast) -> None:
        super().__init__()
        check_compatible(preprocessor.cfg, model)
        self.preprocessor = preprocessor
        self.model = model
        self._uses = model.input_names

    def forward(self, frames: Tensor, audio: Tensor) -> Tensor:
        x = self.preprocessor(frames, audio)
        inputs = {"slow": x.slow, "fast": x.fast, "audio": x.audio}
        return self.model(*[inputs[name] for name in self._uses])

    def example_inputs(self, batch: int = 1, *, seed: int = 0) -> tuple[Tensor, Tensor]:
        """Random valid inputs: uint8 frames at the crop size, a waveform in [-1, 1]."""
        cfg = self.preprocessor.cfg
        g = torch.Generator().manual_seed(seed)
        s = cfg.crop_size
        frames = torch.randint(0, 256, (batch, cfg.num_frames, s, s, 3), generator=g)
        audio = torch.rand(batch, cfg.audio_samples, generator=g) * 2 - 1
        return frames.to(torch.uint8), audio


def check_compatible(cfg: PreprocessConfig, model: AVSlowFast | AVSlowFastConfig) -> None:
    """Raise ``ValueError`` unless the preprocessor produces what the network expects."""
    arch = model.config if isinstance(model, AVSlowFast) else model
    problems = []
    if arch.has_visual and (
        cfg.num_frames != arch.fast_frames or cfg.slow_frames != arch.slow_frames
    ):
        problems.append(
            f"frames {cfg.num_frames} (slow {cfg.slow_frames}) vs model "
            f"fast {arch.fast_frames} / slow {arch.slow_frames}"
        )
    if arch.has_audio and (
        cfg.audio.n_mels != arch.mel_bins or cfg.audio.num_frames != arch.audio_frames
    ):
        problems.append(
            f"log-mel {cfg.audio.num_frames}x{cfg.audio.n_mels} vs model "
            f"{arch.audio_frames}x{arch.mel_bins}"
        )
    if problems:
        raise ValueError("preprocessing does not fit the model: " + "; ".join(problems))


def default_preprocessing(model: AVSlowFast | AVSlowFastConfig) -> PreprocessConfig:
    """The official recipe adapted to a model config (frames, alpha, crop, log-mel size)."""
    arch = model.config if isinstance(model, AVSlowFast) else model
    base = PreprocessConfig()
    return replace(
        base,
        num_frames=arch.fast_frames,
        alpha=arch.alpha,
        crop_size=arch.crop_size,
        audio=replace(base.audio, n_mels=arch.mel_bins, num_frames=arch.audio_frames),
    )
