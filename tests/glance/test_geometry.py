"""Patch boxes from (u, v) and the differentiable bilinear crop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.glance import crop_patches, patch_box, patch_center

FRAMES = [(160, 160), (1280, 720), (720, 1280), (426, 240), (17, 301), (1, 1), (2, 3)]


@pytest.mark.parametrize(("width", "height"), FRAMES)
@pytest.mark.parametrize("rho", [0.6, 1.0, 0.01])
def test_boxes_stay_inside_the_frame_for_extreme_and_middle_corners(
    width: int, height: int, rho: float
) -> None:
    for u in (0.0, 0.5, 1.0):
        for v in (0.0, 0.5, 1.0):
            x0, y0, side = patch_box(u, v, width, height, rho)
            assert all(isinstance(n, int) for n in (x0, y0, side))
            assert side >= 1
            assert x0 >= 0 and x0 + side <= width
            assert y0 >= 0 and y0 + side <= height


def test_corner_fractions_span_the_free_range() -> None:
    w, h, rho = 1280, 720, 0.6
    side = round(0.6 * 720)
    assert patch_box(0.0, 0.0, w, h, rho) == (0, 0, side)
    assert patch_box(1.0, 1.0, w, h, rho) == (w - side, h - side, side)
    x0, y0, _ = patch_box(0.5, 0.5, w, h, rho)
    assert abs(x0 + side / 2 - w / 2) <= 0.5 and abs(y0 + side / 2 - h / 2) <= 0.5


def test_out_of_range_corners_are_clamped_and_nonsense_is_refused() -> None:
    assert patch_box(-3.0, 7.0, 100, 50, 0.5) == patch_box(0.0, 1.0, 100, 50, 0.5)
    with pytest.raises(ValueError):
        patch_box(math.nan, 0.5, 100, 50, 0.5)
    with pytest.raises(ValueError):
        patch_box(0.5, 0.5, 100, 50, 0.0)
    with pytest.raises(ValueError):
        patch_box(0.5, 0.5, 0, 50, 0.5)


def test_patch_center_is_the_centre_of_the_integer_box() -> None:
    for u, v in [(0.0, 0.0), (0.25, 0.75), (1.0, 0.5)]:
        x0, y0, side = patch_box(u, v, 640, 360, 0.5)
        cx, cy = patch_center(torch.tensor([u, v]), 640, 360, 0.5).tolist()
        assert abs(cx - (x0 + side / 2)) <= 0.5 and abs(cy - (y0 + side / 2)) <= 0.5


def test_bilinear_crop_at_an_integer_box_equals_the_hard_crop() -> None:
    # Same conventions as patch_box: a box on pixel boundaries samples pixel centres exactly.
    image = torch.arange(2 * 8 * 12, dtype=torch.float32).view(1, 2, 8, 12)
    for u, v in [(0.25, 1.0), (0.0, 0.0), (1.0, 0.5)]:
        x0, y0, side = patch_box(u, v, 12, 8, 0.5)
        crop = crop_patches(image, torch.tensor([[u, v]]), 0.5, side)
        torch.testing.assert_close(crop, image[:, :, y0 : y0 + side, x0 : x0 + side])


def test_crop_is_differentiable_in_uv_on_raw_frames() -> None:
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 3, 40, 64, generator=gen)
    uv = torch.tensor([[0.2, 0.3], [0.5, 0.5], [0.9, 0.1]], requires_grad=True)
    target = torch.rand(3, 3, 16, 16, generator=gen)
    F.mse_loss(crop_patches(frames, uv, 0.6, 16), target).backward()
    assert uv.grad is not None and torch.isfinite(uv.grad).all()
    assert (uv.grad.abs().sum(dim=1) > 0).all()


def test_crop_moves_towards_a_bright_spot_under_gradient_descent() -> None:
    image = torch.zeros(1, 1, 32, 32)
    image[..., 20:26, 22:28] = 1.0  # the bright spot is right of and below the centre
    uv = torch.tensor([[0.5, 0.5]], requires_grad=True)
    (-crop_patches(image, uv, 0.5, 16).mean()).backward()
    assert uv.grad is not None
    assert uv.grad[0, 0] < 0 and uv.grad[0, 1] < 0  # descent increases u and v
