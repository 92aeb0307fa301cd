"""Import PyTorchVideo model-zoo SlowFast checkpoints (``SLOWFAST_8x8_R50.pyth`` and friends).

The files are ``{"model_state": state_dict}`` of PyTorchVideo's ``create_slowfast`` network,
read like every ``.pyth`` with ``torch.load(weights_only=True)`` (no pickled code). Their names
map onto ours rule by rule::

    blocks.0.multipathway_blocks.{0,1}.{conv,norm}        -> conv1.{slow,fast}.{conv,bn}
    blocks.{0..3}.multipathway_fusion.{conv_fast_to_slow,norm}
                                                          -> fast_to_slow.{pool1,res2..res4}.{conv,bn}
    blocks.{1..4}.multipathway_blocks.P.res_blocks.I.branch1_{conv,norm}
                                                          -> res{2..5}.P.I.shortcut.{0,1}
    ... .branch2.{conv,norm}_{a,b,c}                      -> res{2..5}.P.I.{conv,bn}_{a,b,c}
    blocks.6.proj                                         -> head.proj

Layouts are identical (3-D convs, a linear head), so no tensor is reshaped. The head of the
zoo networks average-pools a fixed (8, 7, 7) / (32, 7, 7) window before the projection: the
global pool of ours at the 224 crop they were trained and tested at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from models.checkpoint import (
    ImportResult,
    config_from_pyslowfast_cfg,
    preprocessing_from_pyslowfast_cfg,
    read_checkpoint,
)
from models.checkpoint_fit import import_zoo_state

_PATHWAY = {"0": "slow", "1": "fast"}
_POINT = {"0": "pool1", "1": "res2", "2": "res3", "3": "res4"}
_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_RULES: list[_Rule] = [
    (
        re.compile(r"^blocks\.0\.multipathway_blocks\.([01])\.(conv|norm)\.(.+)$"),
        lambda m: f"conv1.{_PATHWAY[m[1]]}.{'conv' if m[2] == 'conv' else 'bn'}.{m[3]}",
    ),
    (
        re.compile(r"^blocks\.([0-3])\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(.+)$"),
        lambda m: f"fast_to_slow.{_POINT[m[1]]}.{'bn' if m[2] == 'norm' else 'conv'}.{m[3]}",
    ),
    (
        re.compile(
            r"^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)\.branch1_(conv|norm)\.(.+)$"
        ),
        lambda m: (
            f"res{int(m[1]) + 1}.{_PATHWAY[m[2]]}.{m[3]}.shortcut."
            f"{0 if m[4] == 'conv' else 1}.{m[5]}"
        ),
    ),
    (
        re.compile(
            r"^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)\.branch2\.(conv|norm)_([abc])\.(.+)$"
        ),
        lambda m: (
            f"res{int(m[1]) + 1}.{_PATHWAY[m[2]]}.{m[3]}."
            f"{'conv' if m[4] == 'conv' else 'bn'}_{m[5]}.{m[6]}"
        ),
    ),
    (re.compile(r"^blocks\.\d+\.proj\.(weight|bias)$"), lambda m: f"head.proj.{m[1]}"),
]


def pytorchvideo_to_ours(key: str, value: Tensor) -> tuple[str, Tensor] | None:
    """Map one PyTorchVideo state-dict entry to our name (None: no rule matches)."""
    for pattern, name in _RULES:
        m = pattern.match(key)
        if m:
            return name(m), value
    return None


def import_pytorchvideo(path: str | Path, *, arch: str | None = None) -> ImportResult:
    """Build an ``AVSlowFast`` (visual pathways only) from a PyTorchVideo SlowFast checkpoint.

    Widths, depths, kernels, laterals and classes come from the weights; ``arch`` sets the
    frames and alpha (default: an embedded PySlowFast cfg, else ``slowfast_r50_8x8`` or
    ``slowfast_r101_8x8``, the PyTorchVideo hub's 8x8 recipe).
    """
    state, cfg = read_checkpoint(path)
    # PySlowFast's PyTorchVideo wrappers (its `pysf_model_zoo`) keep the network in `.model`.
    if state and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    if cfg is None:
        return import_zoo_state(state, pytorchvideo_to_ours, arch=arch)
    # Files trained through PySlowFast embed their cfg: it knows alpha, frames and the recipe.
    base = config_from_pyslowfast_cfg(cfg, name=Path(path).stem)
    result = import_zoo_state(state, pytorchvideo_to_ours, arch=arch, base=base)
    result.source_cfg = cfg
    result.preprocessing = preprocessing_from_pyslowfast_cfg(cfg, result.model.config)
    return result
