"""Compute cost in multiply-adds (MACs), the unit of the AVSlowFast/SlowFast papers.

``torch.utils.flop_counter.FlopCounterMode`` counts a multiply-add as 2 FLOPs; we halve it.
It counts convolutions and matmuls (not BN, ReLU, pooling), as the papers do. Counting under
the ``meta`` device allocates nothing and takes a fraction of a second even for R101.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.avslowfast import AVSlowFast
from models.configs import AVSlowFastConfig


def count_gmacs(
    module: nn.Module, example_inputs: Sequence[torch.Tensor] | Mapping[str, torch.Tensor]
) -> float:
    """GMACs (1e9 multiply-adds) of one ``module(*inputs)`` (or ``module(**inputs)``) call.

    Inputs may be real or ``meta`` tensors (then the module must live on ``meta`` too).
    """
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        if isinstance(example_inputs, Mapping):
            module(**example_inputs)
        else:
            module(*example_inputs)
    return counter.get_total_flops() / 2 / 1e9


def model_gmacs(config: AVSlowFastConfig, crop: int | None = None, batch: int = 1) -> float:
    """GMACs of the inference forward of ``config`` at ``crop`` (meta device, no weights)."""
    with torch.device("meta"):
        model = AVSlowFast(config, training_parts=False).eval()
        inputs = [torch.empty(s) for s in config.input_shapes(crop, batch).values()]
    return count_gmacs(model, inputs)


def dense_gmacs(clip_gmacs: float, views: int = 30) -> float:
    """Cost of the official multi-view test protocol (10 clips x 3 crops = 30 views)."""
    return clip_gmacs * views


def count_params(config: AVSlowFastConfig) -> dict[str, int]:
    """``{"params_total", "params_inference"}`` of ``config`` (built on ``meta``)."""
    with torch.device("meta"):
        model = AVSlowFast(config)
    return {
        "params_total": model.num_parameters(),
        "params_inference": model.num_parameters(inference_only=True),
    }
