"""Crop boxes with short-side scale jitter, centre crops, crop+resize and flips."""

from __future__ import annotations

import pytest
import torch

from offline.train import Box, center_crop_box, crop_resize, random_crop_box
from offline.train.augment import flip_label


@pytest.mark.parametrize("hw", [(120, 160), (320, 180), (128, 128)])
def test_random_boxes_are_square_inside_the_frame_and_follow_the_jitter(
    hw: tuple[int, int],
) -> None:
    h, w = hw
    gen = torch.Generator().manual_seed(0)
    sides = []
    for _ in range(300):
        b = random_crop_box(h, w, 224, (256, 320), gen)
        assert b.w == b.h and b.x >= 0 and b.y >= 0 and b.x + b.w <= w and b.y + b.h <= h
        sides.append(b.w / min(h, w))
    # side = crop / scaled short side, scaled short side uniform in [256, 320]
    assert min(sides) == pytest.approx(224 / 320, abs=0.02)
    assert max(sides) == pytest.approx(224 / 256, abs=0.02)


def test_random_boxes_are_reproducible_from_the_generator() -> None:
    a = [random_crop_box(90, 160, 112, (128, 160), torch.Generator().manual_seed(5)) for _ in "ab"]
    assert a[0] == a[1]


def test_centre_box_is_centred_and_sized_like_a_resized_centre_crop() -> None:
    assert center_crop_box(180, 320, 224, 256) == Box(81, 11, 158, 158)
    assert center_crop_box(128, 128, 112, 112) == Box(0, 0, 128, 128)
    with pytest.raises(ValueError):
        center_crop_box(100, 100, 300, 256)


def test_crop_resize_takes_the_box_and_flip_mirrors_it() -> None:
    frames = torch.arange(2 * 8 * 10 * 3, dtype=torch.int64).reshape(2, 8, 10, 3).to(torch.uint8)
    box = Box(2, 1, 4, 4)
    out = crop_resize(frames, box, 4)
    assert torch.equal(out, frames[:, 1:5, 2:6])
    assert torch.equal(crop_resize(frames, box, 4, flip=True), out.flip(2))
    big = crop_resize(frames, box, 9)
    assert big.shape == (2, 9, 9, 3) and big.dtype == torch.uint8
    with pytest.raises(ValueError):
        crop_resize(frames, Box(8, 0, 4, 4), 4)


def test_crop_resize_agrees_with_a_float_antialiased_resize_to_one_level() -> None:
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 40, 50, 3), generator=gen, dtype=torch.uint8)
    box = Box(5, 2, 36, 36)
    out = crop_resize(frames, box, 20)
    crop = frames[:, 2:38, 5:41].permute(0, 3, 1, 2).float()
    ref = (
        torch.nn.functional.interpolate(
            crop, size=(20, 20), mode="bilinear", align_corners=False, antialias=True
        )
        .round()
        .clamp(0, 255)
        .permute(0, 2, 3, 1)
    )
    assert out.shape == (3, 20, 20, 3) and out.dtype == torch.uint8 and out.is_contiguous()
    assert (out.float() - ref).abs().max() <= 1


def test_flip_label_follows_the_map() -> None:
    assert flip_label(4, [0, 1, 2, 3, 5, 4]) == 5
    assert flip_label(2, [0, 1, 2, 3, 5, 4]) == 2
    assert flip_label(4, None) == 4
