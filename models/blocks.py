"""Building blocks of the three pathways: stems, bottlenecks, the audio time-frequency block.

Visual tensors are ``[B, C, T, H, W]`` (3-D convs); audio tensors are ``[B, C, T_a, F]``
(2-D convs over log-mel time x frequency). Every conv has no bias and is followed by BatchNorm,
as in the official code. Kernel sizes are written time-first for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Norm:
    """BatchNorm settings shared by every block (official: eps 1e-5, momentum 0.1)."""

    eps: float = 1e-5
    momentum: float = 0.1

    def make(self, channels: int, dims: int) -> nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d:
        if dims == 1:
            return nn.BatchNorm1d(channels, eps=self.eps, momentum=self.momentum)
        if dims == 2:
            return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)
        return nn.BatchNorm3d(channels, eps=self.eps, momentum=self.momentum)


def conv(
    dim_in: int,
    dim_out: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...] | None = None,
) -> nn.Conv1d | nn.Conv2d | nn.Conv3d:
    """Bias-free conv with "same" padding (odd kernels); 1-, 2- or 3-D from ``len(kernel)``."""
    stride = stride or (1,) * len(kernel)
    padding = tuple(k // 2 for k in kernel)
    if len(kernel) == 1:
        return nn.Conv1d(dim_in, dim_out, kernel[0], stride[0], padding[0], bias=False)
    if len(kernel) == 2:
        return nn.Conv2d(dim_in, dim_out, kernel, stride, padding, bias=False)  # type: ignore[arg-type]
    return nn.Conv3d(dim_in, dim_out, kernel, stride, padding, bias=False)  # type: ignore[arg-type]


class VideoStem(nn.Module):
    """conv1 + pool1 of a visual pathway.

    ``[B, 3, T, H, W] -> [B, C, T, H/4, W/4]``: conv ``k_t x 7^2`` stride (1, 2, 2), BN, ReLU,
    max-pool ``1 x 3^2`` stride (1, 2, 2).
    """

    def __init__(self, dim_out: int, temporal_kernel: int, norm: Norm) -> None:
        super().__init__()
        self.conv = conv(3, dim_out, (temporal_kernel, 7, 7), (1, 2, 2))
        self.bn = norm.make(dim_out, 3)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class AudioStem(nn.Module):
    """conv1 of the Audio pathway: a 9x1 time conv plus a 1x9 frequency conv, summed.

    ``[B, 1, T_a, F] -> [B, C, T_a, F]`` (stride 1, and no pool1: the paper keeps the full
    time-frequency resolution here).
    """

    def __init__(self, dim_out: int, norm: Norm) -> None:
        super().__init__()
        self.conv_t = conv(1, dim_out, (9, 1))
        self.conv_f = conv(1, dim_out, (1, 9))
        self.bn = norm.make(dim_out, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv_t(x) + self.conv_f(x)))


class ConvBN(nn.Sequential):
    """1x1 projection shortcut (conv + BN) used when a block changes shape."""

    def __init__(self, dim_in: int, dim_out: int, stride: tuple[int, ...], norm: Norm) -> None:
        dims = len(stride)
        super().__init__(conv(dim_in, dim_out, (1,) * dims, stride), norm.make(dim_out, dims))


class Bottleneck(nn.Module):
    """ResNet bottleneck: ``a`` (kernel_a) -> ``b`` (kernel_b, strided) -> ``c`` (1x1) + shortcut.

    Visual: kernel_a ``k_t x 1^2`` (temporal conv of SlowFast), kernel_b ``1 x 3^2`` with the
    spatial stride. Audio res4/res5: kernel_a ``1x1``, kernel_b ``3x3`` strided in time and
    frequency. ``[B, C_in, *S] -> [B, C_out, *S / stride]``.
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_out: int,
        dim_inner: int,
        kernel_a: tuple[int, ...],
        kernel_b: tuple[int, ...],
        stride: tuple[int, ...],
        norm: Norm,
    ) -> None:
        super().__init__()
        dims = len(kernel_a)
        self.shortcut = (
            ConvBN(dim_in, dim_out, stride, norm)
            if dim_in != dim_out or any(s != 1 for s in stride)
            else None
        )
        self.conv_a = conv(dim_in, dim_inner, kernel_a)
        self.bn_a = norm.make(dim_inner, dims)
        self.conv_b = conv(dim_inner, dim_inner, kernel_b, stride)
        self.bn_b = norm.make(dim_inner, dims)
        self.conv_c = conv(dim_inner, dim_out, (1,) * dims)
        self.bn_c = norm.make(dim_out, dims)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        y = self.relu(self.bn_a(self.conv_a(x)))
        y = self.relu(self.bn_b(self.conv_b(y)))
        y = self.bn_c(self.conv_c(y))
        return self.relu(y + identity)


class TFBlock(nn.Module):
    """Audio time-frequency block (official ``tf_bottleneck_transform_v1``), res2/res3.

    Both 3-tap convs read the block input directly (no 1x1 reduction first)::

        x ─┬─ conv_t 3x1 (time) ─ BN ─ ReLU ─┐
           └─ conv_f 1x3 (freq) ─ BN ─ ReLU ─┴─ concat (2·C_inner) ─ conv_out 1x1 ─ BN ─(+x)─ ReLU

    ``[B, C_in, T, F] -> [B, C_out, T / s, F / s]`` (stride s on both 3-tap convs).
    """

    def __init__(self, dim_in: int, dim_out: int, dim_inner: int, stride: int, norm: Norm) -> None:
        super().__init__()
        s = (stride, stride)
        self.shortcut = (
            ConvBN(dim_in, dim_out, s, norm) if dim_in != dim_out or stride != 1 else None
        )
        self.conv_t = conv(dim_in, dim_inner, (3, 1), s)
        self.bn_t = norm.make(dim_inner, 2)
        self.conv_f = conv(dim_in, dim_inner, (1, 3), s)
        self.bn_f = norm.make(dim_inner, 2)
        self.conv_out = conv(2 * dim_inner, dim_out, (1, 1))
        self.bn_out = norm.make(dim_out, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        t = self.relu(self.bn_t(self.conv_t(x)))
        f = self.relu(self.bn_f(self.conv_f(x)))
        y = self.bn_out(self.conv_out(torch.cat([t, f], dim=1)))
        return self.relu(y + identity)


def video_stage(
    *,
    dim_in: int,
    dim_out: int,
    dim_inner: int,
    num_blocks: int,
    temporal_kernel: int,
    spatial_stride: int,
    norm: Norm,
) -> nn.Sequential:
    """One visual res stage; the first block carries the spatial stride (on the 1x3^2 conv)."""
    return nn.Sequential(
        *(
            Bottleneck(
                dim_in=dim_in if i == 0 else dim_out,
                dim_out=dim_out,
                dim_inner=dim_inner,
                kernel_a=(temporal_kernel, 1, 1),
                kernel_b=(1, 3, 3),
                stride=(1, spatial_stride, spatial_stride) if i == 0 else (1, 1, 1),
                norm=norm,
            )
            for i in range(num_blocks)
        )
    )


def audio_stage(
    *,
    dim_in: int,
    dim_out: int,
    dim_inner: int,
    num_blocks: int,
    stride: int,
    time_frequency: bool,
    norm: Norm,
) -> nn.Sequential:
    """One audio res stage: TF-blocks (res2/res3) or 3x3 bottlenecks (res4/res5)."""
    blocks: list[nn.Module] = []
    for i in range(num_blocks):
        d_in, s = (dim_in, stride) if i == 0 else (dim_out, 1)
        if time_frequency:
            blocks.append(TFBlock(d_in, dim_out, dim_inner, s, norm))
        else:
            blocks.append(
                Bottleneck(
                    dim_in=d_in,
                    dim_out=dim_out,
                    dim_inner=dim_inner,
                    kernel_a=(1, 1),
                    kernel_b=(3, 3),
                    stride=(s, s),
                    norm=norm,
                )
            )
    return nn.Sequential(*blocks)
