"""The paper's spatial augmentation, expressed on crop boxes so the data side can apply it anywhere.

Training (SlowFast/AVSlowFast recipe): scale the short side to a random size in
``[min_short, max_short]`` (256..320 for 224 crops) and take a random ``crop`` square, then flip
horizontally with probability 0.5. Instead of resizing the whole frame first, the same sample is
expressed as a box in *source* pixels of side ``crop * short / s``; cropping that box and resizing
it to ``crop`` gives the same pixels at a fraction of the cost (and works on a decoded cache).

Test: scale the short side to ``short_side`` and take the centre ``crop`` square (as a box too).

A horizontal flip mirrors motion: for classes defined by left/right direction the label must be
mapped through a ``flip_map`` (``flip_label``); the dataset decides which classes those are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Box(NamedTuple):
    """Axis-aligned box in source pixels (x, y: top-left), always inside the frame."""

    x: int
    y: int
    w: int
    h: int


def _randint(lo: int, hi: int, gen: torch.Generator | None) -> int:
    """Uniform integer in [lo, hi] inclusive."""
    return lo + int(torch.randint(0, hi - lo + 1, (1,), generator=gen).item())


def random_crop_box(
    height: int,
    width: int,
    crop: int,
    short_range: tuple[int, int],
    gen: torch.Generator | None = None,
) -> Box:
    """Short-side scale jitter + random square crop, as a source-pixel box."""
    lo, hi = short_range
    if not 0 < crop <= lo <= hi:
        raise ValueError(f"need 0 < crop <= min_short <= max_short, got {crop}, {short_range}")
    scaled_short = _randint(lo, hi, gen)
    short = min(height, width)
    side = max(1, min(short, round(crop * short / scaled_short)))
    x = _randint(0, width - side, gen)
    y = _randint(0, height - side, gen)
    return Box(x, y, side, side)


def center_crop_box(height: int, width: int, crop: int, short_side: int) -> Box:
    """Test-time centre crop: short side scaled to ``short_side``, centre ``crop`` square."""
    if not 0 < crop <= short_side:
        raise ValueError("need 0 < crop <= short_side")
    short = min(height, width)
    side = max(1, min(short, round(crop * short / short_side)))
    return Box((width - side) // 2, (height - side) // 2, side, side)


def random_flip(p: float, gen: torch.Generator | None = None) -> bool:
    return bool(torch.rand((), generator=gen) < p)


def flip_label(label: int, flip_map: Sequence[int] | None) -> int:
    """The label of a horizontally flipped clip (identity when there is no map)."""
    return label if flip_map is None else int(flip_map[label])


def crop_resize(frames: Tensor, box: Box, size: int, flip: bool = False) -> Tensor:
    """Crop ``box`` from uint8 frames ``[T, H, W, 3]`` and resize to ``[T, size, size, 3]`` uint8.

    Bilinear with anti-aliasing (downscaling is the usual case), optional horizontal flip.
    """
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {list(frames.shape)}")
    _t, h, w, _ = frames.shape
    if not (box.x >= 0 and box.y >= 0 and box.x + box.w <= w and box.y + box.h <= h):
        raise ValueError(f"box {box} is outside the {w}x{h} frame")
    x = frames[:, box.y : box.y + box.h, box.x : box.x + box.w].permute(0, 3, 1, 2)
    if (box.h, box.w) != (size, size):
        # uint8 in, uint8 out, channels-last: torch's byte kernel for this is ~6x faster than a
        # float round trip (the producer thread's cost per step of training); values agree
        # with the float path to +-1
        x = F.interpolate(
            x.contiguous(memory_format=torch.channels_last), size=(size, size), mode="bilinear",
            align_corners=False, antialias=True,
        )  # fmt: skip
    if flip:
        x = x.flip(-1)
    return x.permute(0, 2, 3, 1).contiguous()
