"""Shared by the model-zoo importers whose files carry no config (PyTorchVideo, Caffe2 ``.pkl``).

The network's shape is read off the weights once they are in our names: stem width and Fast
ratio, blocks per stage, temporal kernels, the Fast->Slow laterals and the class count. What
weights cannot tell (alpha, frame count, crop) comes from a named config: ``arch`` when given,
else the model-zoo recipe that matches the depth and lateral kernel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torch import Tensor

from models.avslowfast import AVSlowFast
from models.checkpoint import CheckpointError, ImportResult, KeyMapper
from models.checkpoint import load_pyslowfast_state as load_mapped_state
from models.configs import FUSION_POINTS, STAGES, AVSlowFastConfig, HeadSpec
from models.named_configs import get_config

_BLOCK = re.compile(r"^(res[2-5])\.(slow|fast)\.(\d+)\.")


def map_state(state: Mapping[str, Tensor], mapper: KeyMapper) -> dict[str, Tensor]:
    """``state`` in our names (entries without a rule are left out)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        mapped = mapper(key, value)
        if mapped is not None:
            out[mapped[0]] = mapped[1]
    return out


def default_arch(ours: Mapping[str, Tensor]) -> str:
    """The zoo recipe for these weights: R101 -> 8x8; R50 with a 5-tap lateral -> 4x16, else 8x8."""
    if _blocks(ours)[2] == 23:
        return "slowfast_r101_8x8"
    lateral = ours.get("fast_to_slow.pool1.conv.weight")
    return (
        "slowfast_r50_4x16" if lateral is not None and lateral.shape[2] == 5 else "slowfast_r50_8x8"
    )


def fit_slowfast_config(base: AVSlowFastConfig, ours: Mapping[str, Tensor]) -> AVSlowFastConfig:
    """``base`` with every shape-determining field taken from the (our-named) weights."""
    slow, fast = ours.get("conv1.slow.conv.weight"), ours.get("conv1.fast.conv.weight")
    proj = ours.get("head.proj.weight")
    if slow is None or fast is None or proj is None:
        raise CheckpointError(
            "no two-pathway SlowFast weights found (stems and head); only SlowFast "
            "checkpoints are supported (not Slow-only, I3D, C2D, X3D or MViT)"
        )
    width, fast_width = int(slow.shape[0]), int(fast.shape[0])
    if width % fast_width:
        raise CheckpointError(f"Slow stem width {width} is not a multiple of Fast {fast_width}")
    blocks = _blocks(ours)
    kernels: dict[str, list[int]] = {"slow": [int(slow.shape[2])], "fast": [int(fast.shape[2])]}
    for stage in STAGES:
        for p in ("slow", "fast"):
            conv_a = ours.get(f"{stage}.{p}.0.conv_a.weight")
            if conv_a is None:
                raise CheckpointError(f"no first block in {stage} of the {p} pathway")
            kernels[p].append(int(conv_a.shape[2]))
    laterals = [ours.get(f"fast_to_slow.{point}.conv.weight") for point in FUSION_POINTS]
    present = [w for w in laterals if w is not None]
    if not present:
        raise CheckpointError("no Fast->Slow laterals found")
    kw: dict[str, Any] = {
        "pathways": ("slow", "fast"),
        "depth": 2 + 3 * sum(blocks),  # bottleneck ResNet: 50 for (3, 4, 6, 3), 101 for R101
        "blocks": blocks,
        "width_per_group": width,
        "beta_inv": width // fast_width,
        "slow_temporal_kernels": tuple(kernels["slow"]),
        "fast_temporal_kernels": tuple(kernels["fast"]),
        "fs_fusion": tuple(w is not None for w in laterals),
        "fusion_kernel": int(present[0].shape[2]),
        "fusion_conv_ratio": int(present[0].shape[0]) // int(present[0].shape[1]),
        "afs_fusion": (False,) * 4,
        "avs_stages": (False,) * 5,
        "drop_pathway": 0.0,
    }
    first = base.heads[0]
    kw["heads"] = (HeadSpec(first.name, int(proj.shape[0]), first.multi_label),)
    try:
        return replace(base, **kw)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the weights describe no network we build: {e}") from e


def import_zoo_state(
    state: Mapping[str, Tensor],
    mapper: KeyMapper,
    *,
    arch: str | None,
    base: AVSlowFastConfig | None = None,
) -> ImportResult:
    """Build the network the weights describe and load them; the report lists what did not fit.

    The frames/alpha/crop come from ``arch``, else ``base`` (e.g. from an embedded cfg), else
    the zoo recipe of ``default_arch``.
    """
    ours = map_state(state, mapper)
    if arch is not None or base is None:
        base = get_config(arch or default_arch(ours))
    config = fit_slowfast_config(base, ours)
    model = AVSlowFast(config)
    report = load_mapped_state(model, state, mapper)
    # Files without BatchNorm step counters (Caffe2) leave ours at 0, which is what they are.
    report.new = [k for k in report.new if not k.endswith("num_batches_tracked")]
    return ImportResult(model=model, report=report, source_cfg=None, preprocessing=None)


def _blocks(ours: Mapping[str, Tensor]) -> tuple[int, int, int, int]:
    counts: dict[tuple[str, str], set[int]] = {}
    for key in ours:
        m = _BLOCK.match(key)
        if m:
            counts.setdefault((m[1], m[2]), set()).add(int(m[3]))
    per_stage = []
    for stage in STAGES:
        slow, fast = counts.get((stage, "slow"), set()), counts.get((stage, "fast"), set())
        if slow != fast or slow != set(range(len(slow))):
            raise CheckpointError(
                f"{stage}: Slow has {len(slow)} blocks, Fast {len(fast)}; only equal, "
                "contiguous depths per pathway are supported"
            )
        per_stage.append(len(slow))
    return per_stage[0], per_stage[1], per_stage[2], per_stage[3]
