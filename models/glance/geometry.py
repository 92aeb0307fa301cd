"""Patch geometry: (u, v) corner fractions → pixel boxes, and differentiable bilinear crops.

(u, v) are the fractions of the free range along x and y: ``x0 = u * (W - p)``,
``y0 = v * (H - p)`` with side ``p = rho * min(W, H)``. Any (u, v) in [0, 1]² therefore gives a
box inside the frame, which is what lets the policy use a plain sigmoid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def patch_box(u: float, v: float, width: int, height: int, rho: float) -> tuple[int, int, int]:
    """Integer ``(x0, y0, side)`` of the square patch, always inside a ``width x height`` frame.

    Used by the service for the hard crop from source pixels; (u, v) outside [0, 1] are clamped.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if not (math.isfinite(u) and math.isfinite(v)) or not 0 < rho <= 1:
        raise ValueError(f"need finite u, v and rho in (0, 1], got u={u}, v={v}, rho={rho}")
    side = min(max(1, round(rho * min(width, height))), width, height)
    u, v = min(max(u, 0.0), 1.0), min(max(v, 0.0), 1.0)
    x0 = min(max(round(u * (width - side)), 0), width - side)
    y0 = min(max(round(v * (height - side)), 0), height - side)
    return x0, y0, side


def patch_center(uv: Tensor, width: float, height: float, rho: float) -> Tensor:
    """Continuous patch centre in pixels ``[..., 2]`` (x, y) for ``uv [..., 2]``."""
    side = rho * min(width, height)
    free = torch.tensor([width - side, height - side], dtype=uv.dtype, device=uv.device)
    return uv * free + side / 2


def crop_grid(
    uv: Tensor, rho: float, height: int, width: int, out_size: int, offset: float = 0.0
) -> Tensor:
    """``affine_grid`` sampling grid ``[N, out, out, 2]`` of the (u, v) patches.

    Coordinates follow ``align_corners=False``: pixel i spans [i, i + 1) and the image spans
    [-1, 1]. ``offset`` moves the box by that many input units (see :func:`crop_patches`).
    The grid is differentiable in ``uv``.
    """
    side = rho * min(width, height)
    cx = uv[:, 0] * (width - side) + side / 2 + offset
    cy = uv[:, 1] * (height - side) + side / 2 + offset
    zeros = torch.zeros_like(cx)
    theta = torch.stack(
        [
            torch.stack([zeros + side / width, zeros, 2 * cx / width - 1], dim=1),
            torch.stack([zeros, zeros + side / height, 2 * cy / height - 1], dim=1),
        ],
        dim=1,
    )
    return F.affine_grid(theta, [uv.shape[0], 1, out_size, out_size], align_corners=False)


def crop_patches(
    images: Tensor, uv: Tensor, rho: float, out_size: int, offset: float = 0.0
) -> Tensor:
    """Bilinear crops ``[N, C, out, out]`` of ``images [N, C, H, W]`` at ``uv [N, 2]``.

    Works on raw frames (training-time differentiable crop) and on feature maps (the patch
    proxy); gradients reach ``uv`` through the bilinear weights. For a feature map, ``offset``
    aligns its cells with the frame's pixels (see :func:`feature_map_offset`).
    """
    if images.dim() != 4 or uv.shape != (images.shape[0], 2):
        raise ValueError(f"need images [N,C,H,W] and uv [N,2], got {images.shape}, {uv.shape}")
    grid = crop_grid(uv.to(images.dtype), rho, images.shape[2], images.shape[3], out_size, offset)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def feature_map_offset(stride: int) -> float:
    """Where a frame box lands on a feature map, in cells, beyond ``pixel / stride``.

    In a trunk of 3x3 convs with padding 1 (and 1x1 convs), cell j is centred on input pixel
    ``stride * j``, i.e. at ``stride * j + 0.5`` in continuous coordinates, not at the middle of
    its ``stride``-pixel block. A box at pixel x therefore sits at map coordinate
    ``(x - 0.5) / stride + 0.5``: shifted by ``0.5 - 0.5 / stride`` cells. Ignoring this biases
    the patch proxy, and the policy trained from it, by almost half a cell up and left.
    """
    return 0.5 - 0.5 / stride
