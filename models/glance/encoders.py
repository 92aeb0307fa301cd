"""Unimodal glance encoders: MobileNetV2 on snippet frames, MobileNetV2 on 1 s log-mel."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.features import LogMelSpectrogram
from models.glance.config import GlanceConfig
from models.mobilenet import MobileNetV2


class VisualEncoder(nn.Module):
    """uint8 ``[B, T, S, S, 3]`` → (map ``[B, T, C, h, w]``, pooled ``[B, T, C]``)."""

    scale: Tensor
    shift: Tensor

    def __init__(self, cfg: GlanceConfig) -> None:
        super().__init__()
        self.trunk = MobileNetV2(cfg.visual)
        self.out_channels = self.trunk.out_channels
        mean = torch.tensor(cfg.frame_mean, dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor(cfg.frame_std, dtype=torch.float64).view(1, 3, 1, 1)
        # Normalisation lives in the model so the serving side ships uint8 pixels.
        self.register_buffer("scale", (1 / (255 * std)).float(), persistent=False)
        self.register_buffer("shift", (-mean / std).float(), persistent=False)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1).permute(0, 3, 1, 2).contiguous()
        x = x.to(self.scale.dtype) * self.scale + self.shift
        fmap = self.trunk(x)
        fmap = fmap.view(b, t, *fmap.shape[1:])
        return fmap, fmap.mean(dim=(3, 4))


class AudioEncoder(nn.Module):
    """float ``[B, T, N]`` waveforms → pooled ``[B, T, C]`` (log-mel front end inside)."""

    def __init__(self, cfg: GlanceConfig) -> None:
        super().__init__()
        self.logmel = LogMelSpectrogram(cfg.audio_features, normalize=True, to_num_frames=True)
        self.trunk = MobileNetV2(cfg.audio)
        self.out_channels = self.trunk.out_channels

    def forward(self, audio: Tensor) -> Tensor:
        b, t = audio.shape[:2]
        dtype = self.logmel_dtype()
        spec = self.logmel(audio.flatten(0, 1)).to(dtype).unsqueeze(1)  # [BT, 1, frames, mels]
        return self.trunk(spec).mean(dim=(2, 3)).view(b, t, -1)

    def logmel_dtype(self) -> torch.dtype:
        # The log-mel stays float32 internally; feed the trunk in its own parameter dtype.
        return next(self.trunk.parameters()).dtype
