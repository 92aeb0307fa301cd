"""Lateral connections: Fast->Slow (concatenated), Audio->FastSlow or Audio->Fast (summed), and
the audio-visual non-local block (the paper's Fig. 2, right)."""

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

    A->F->S uses the same stack with ``dim_out = C_f`` and a time stride down to the Fast
    frames; its output is summed into Fast before the F->S lateral (so Slow gets audio through
    Fast).

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


class AudioVisualNonLocal(nn.Module):
    """Audio-visual non-local fusion: audio queries select visual positions (paper §3.3 (iii)).

    The paper says audio features are matched to every visual location (T, H, W) and the
    affinity builds a new visual feature from the locations audio deems important; it gives no
    layer details, so we chose (after Wang et al.'s embedded-Gaussian non-local block):

    - query θ: mean over frequency, then a ``kernel``-tap conv with the A->FS time stride (one
      query per Slow frame), BN; keys φ and values g: 1x1x1 convs of the visual tensor; inner
      width ``dim_inner`` (half the visual channels, as in the non-local paper);
    - affinity: softmax over all T·H·W visual positions of ``q·k / sqrt(dim_inner)``;
    - output: for each Slow frame, the affinity-weighted sum of values, a 1x1x1 conv W_z back
      to the visual width and BN (zero-initialised, so the block starts as identity), added
      residually at that frame and broadcast over H x W.

    ``forward(visual [B, C, T_s, H, W], audio [B, C_a, T_a, F]) -> [B, C, T_s, H, W]``.
    """

    def __init__(
        self,
        dim_visual: int,
        dim_audio: int,
        dim_inner: int,
        kernel: int,
        time_stride: int,
        norm: Norm,
    ) -> None:
        super().__init__()
        self.query = conv(dim_audio, dim_inner, (kernel,), (time_stride,))
        self.bn_query = norm.make(dim_inner, 1)
        self.key = conv(dim_visual, dim_inner, (1, 1, 1))
        self.value = conv(dim_visual, dim_inner, (1, 1, 1))
        self.out = conv(dim_inner, dim_visual, (1, 1, 1))
        self.bn_out = norm.make(dim_visual, 3)
        self.scale = float(dim_inner) ** -0.5

    def forward(self, visual: Tensor, audio: Tensor) -> Tensor:
        q = self.bn_query(self.query(audio.mean(dim=3)))  # [B, D, T_s]
        k = self.key(visual).flatten(2)  # [B, D, T·H·W]
        v = self.value(visual).flatten(2)
        affinity = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=-1)
        y = torch.bmm(v, affinity.transpose(1, 2))  # [B, D, T_s]
        return visual + self.bn_out(self.out(y[:, :, :, None, None]))
