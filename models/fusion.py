"""Lateral connections: Fast->Slow (concatenated) and Audio->FastSlow (summed)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.blocks import Norm, conv


class FastToSlow(nn.Module):
    """Fast->Slow lateral: time-strided conv ``k x 1^2``, stride (α, 1, 1), BN, ReLU.

    ``forward(slow [B, C_s, T, H, W], fast [B, C_f, αT, H, W]) -> [B, C_s + r·C_f, T, H, W]``
    (the lateral is concatenated after the Slow channels).
    """

    def __init__(self, dim_fast: int, ratio: int, kernel: int, alpha: int, norm: Norm) -> None:
        super().__init__()
        self.conv = conv(dim_fast, dim_fast * ratio, (kernel, 1, 1), (alpha, 1, 1))
        self.bn = norm.make(dim_fast * ratio, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, slow: Tensor, fast: Tensor) -> Tensor:
        lateral = self.relu(self.bn(self.conv(fast)))
        return torch.cat([slow, lateral], dim=1)


class AudioToFastSlow(nn.Module):
    """Audio->FastSlow conv stack (official ``FuseAV``, A->FS mode).

    ``[B, C_a, T_a, F]`` -> mean over F -> conv0 (5 taps, stride 1, C_a -> inner), BN, ReLU ->
    conv1 (5 taps, time stride T_a / T_s, inner -> C_s + r·C_f), BN, ReLU -> ``[B, C, T_s, 1, 1]``,
    ready to be added to the (F->S-concatenated) Slow tensor, broadcast over H x W.
    """

    def __init__(
        self,
        dim_audio: int,
        dim_inner: int,
        dim_out: int,
        kernel: int,
        time_stride: int,
        norm: Norm,
    ) -> None:
        super().__init__()
        self.conv0 = conv(dim_audio, dim_inner, (kernel,))
        self.bn0 = norm.make(dim_inner, 1)
        self.conv1 = conv(dim_inner, dim_out, (kernel,), (time_stride,))
        self.bn1 = norm.make(dim_out, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, audio: Tensor) -> Tensor:
        x = audio.mean(dim=3)
        x = self.relu(self.bn0(self.conv0(x)))
        x = self.relu(self.bn1(self.conv1(x)))
        return x[:, :, :, None, None]
