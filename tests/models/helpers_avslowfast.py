"""Shared helpers for the AVSlowFast tests (not a test module)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from models.avslowfast import AVSlowFast

M = TypeVar("M", bound=nn.Module)


def randomize_bn(model: M, seed: int = 0) -> M:
    """Give every BatchNorm non-trivial statistics and affine terms (like the fixtures do).

    The official init zero-initialises the last BN of each block, which would make every
    residual branch vanish and hide wiring mistakes.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)  # type: ignore[union-attr]
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)  # type: ignore[union-attr]
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def random_inputs(
    model: AVSlowFast, batch: int = 1, seed: int = 0, crop: int | None = None
) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) for s in model.config.input_shapes(crop, batch).values()]


def fixture_io(fixtures_dir: Path, name: str) -> tuple[Path, list[Tensor], Tensor, Tensor]:
    """(checkpoint path, float32 inputs in our layout, official logits, official probs)."""
    folder = fixtures_dir / name
    io = torch.load(folder / "io.pt", weights_only=True, map_location="cpu")
    inputs = [io["slow"].float(), io["fast"].float()]
    if "audio" in io:
        # Official audio is [B, 1, 1(dummy T), 128, 80]; ours is [B, 1, 128, 80].
        inputs.append(io["audio"].float().squeeze(2))
    return folder / "checkpoint.pyth", inputs, io["logits"], io["probs"]
