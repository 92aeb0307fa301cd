"""Regenerate the PyTorchVideo and Caffe2 import fixtures in tests/fixtures/zoo/ (run by hand).

Needs PyTorchVideo, which avserve never imports: run it from a separate virtualenv,

    python3.11 -m venv /tmp/ptv
    /tmp/ptv/bin/pip install torch==2.13.0 pytorchvideo
    /tmp/ptv/bin/pip install safetensors numpy
    /tmp/ptv/bin/python scripts/make_zoo_fixtures.py

PyTorchVideo imports ``torchvision.ops.RoIAlign`` at import time (detection heads only); the
PyPI torchvision wheels are CUDA builds that do not load next to a CPU torch, so the script
installs a stand-in ``torchvision`` module when the real one is missing or broken. The SlowFast
classification network never touches it.

What it writes (the reference outputs are computed by PyTorchVideo's own network):
- ``pytorchvideo_slowfast_r50_w2.pyth``: ``create_slowfast`` with the hub ``slowfast_r50``
  layout (ResNet-50 depths, lateral kernel 7, alpha 4) at width 2 and beta 1/2, 10 classes,
  random weights and random BatchNorm statistics, saved as ``{"model_state": state_dict}``
  like the model-zoo ``.pyth`` files (tensors of one dtype share a storage: a small file).
- ``caffe2_slowfast_d18_w2.pkl``: a second PyTorchVideo network (``model_depth=18``: one block
  per stage) converted to a Caffe2 blob dict (``{"blobs": {name: ndarray}}``, pickle
  protocol 2) with PySlowFast's Caffe2 blob names, plus one ``*_momentum`` training blob.
- ``io.safetensors``: the inputs ``slow`` / ``fast`` (float16 noise, fed to both networks as
  float32) and their outputs ``pytorchvideo_logits`` / ``caffe2_logits``.
- ``pytorchvideo_hub_keys.json.gz``: name -> shape of every entry of the full-size hub
  ``slowfast_r50`` and ``slowfast_r101`` state dicts (no weights).
"""

from __future__ import annotations

import gzip
import importlib
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "zoo"
CLASSES = 10
CROP = 40  # 40 -> 20 (conv1) -> 10 (pool1, res2) -> 5 -> 3 -> 2 (res5): the head averages 2x2
RES5 = 2
SLOW_T, ALPHA = 2, 4
WIDTH, BETA_INV = 2, 2


def _torchvision_stand_in() -> None:
    try:
        importlib.import_module("torchvision.ops")
    except Exception:  # missing, or a wheel built against another torch
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.RoIAlign = type("RoIAlign", (nn.Module,), {})  # type: ignore[attr-defined]
        tv.ops = ops  # type: ignore[attr-defined]
        sys.modules |= {"torchvision": tv, "torchvision.ops": ops}


def build(depth: int, seed: int) -> nn.Module:
    from pytorchvideo.models.slowfast import create_slowfast

    torch.manual_seed(seed)
    model = create_slowfast(
        model_depth=depth,
        model_num_class=CLASSES,
        stem_dim_outs=(WIDTH, WIDTH // BETA_INV),
        slowfast_channel_reduction_ratio=(BETA_INV,),
        slowfast_fusion_conv_kernel_size=(7, 1, 1),  # hub slowfast_r50
        head_pool_kernel_sizes=((SLOW_T, RES5, RES5), (SLOW_T * ALPHA, RES5, RES5)),
    )
    # No BatchNorm may be the identity (PyTorchVideo zero-inits each block's last BN weight).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n))
            m.running_var.copy_(torch.rand(n) + 0.5)
            m.weight.data.copy_(torch.rand(n) + 0.5)
            m.bias.data.copy_(0.1 * torch.randn(n))
    return model.eval()


def run(model: nn.Module, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
    """Logits, with the projection rescaled so they span about +-3 (softmax not one-hot)."""
    proj = model.blocks[-1].proj
    with torch.no_grad():
        logits = model([slow, fast])
        scale = 3.0 / float(logits.abs().max())
        proj.weight.mul_(scale)
        proj.bias.mul_(scale)
        return model([slow, fast])


def packed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same values as views of one storage per dtype (a few zip entries, not 700)."""
    out = dict(state)
    for dtype in {v.dtype for v in state.values()}:
        keys = [k for k, v in state.items() if v.dtype == dtype]
        flat, at = torch.cat([state[k].flatten() for k in keys]), 0
        for k in keys:
            n = state[k].numel()
            out[k] = flat[at : at + n].view(state[k].shape)
            at += n
    return out


_C2_BN = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}


def caffe2_name(key: str, blocks: tuple[int, ...]) -> str | None:
    """PyTorchVideo state-dict name -> PySlowFast's Caffe2 blob name (None: not stored)."""
    parts = key.split(".")
    if parts[-1] == "num_batches_tracked":
        return None
    if parts[2] == "proj":
        return f"pred_{parts[-1][0]}"
    k = int(parts[1])
    if parts[2] == "multipathway_fusion":
        base = (
            "t_pool1_subsample"
            if k == 0
            else f"t_res{k + 1}_{blocks[k - 1] - 1}_branch2c_bn_subsample"
        )
        return f"{base}_w" if parts[3].startswith("conv") else f"{base}_bn_{_C2_BN[parts[-1]]}"
    t = "t_" if parts[3] == "1" else ""
    if k == 0:
        return f"{t}conv1_w" if parts[4] == "conv" else f"{t}res_conv1_bn_{_C2_BN[parts[-1]]}"
    block = f"{t}res{k + 1}_{parts[5]}_branch"
    if parts[6] == "branch1_conv":
        return f"{block}1_w"
    if parts[6] == "branch1_norm":
        return f"{block}1_bn_{_C2_BN[parts[-1]]}"
    letter = parts[7][-1]
    return (
        f"{block}2{letter}_w"
        if parts[7].startswith("conv")
        else f"{block}2{letter}_bn_{_C2_BN[parts[-1]]}"
    )


def main() -> None:
    _torchvision_stand_in()
    torch.manual_seed(1)
    slow = torch.randn(1, 3, SLOW_T, CROP, CROP).half()
    fast = torch.randn(1, 3, SLOW_T * ALPHA, CROP, CROP).half()

    OUT.mkdir(parents=True, exist_ok=True)
    model = build(50, seed=0)
    logits = run(model, slow.float(), fast.float())
    torch.save(
        {"model_state": packed(model.state_dict())}, OUT / "pytorchvideo_slowfast_r50_w2.pyth"
    )

    small = build(18, seed=2)
    small_logits = run(small, slow.float(), fast.float())
    blobs: dict[str, np.ndarray] = {}
    for key, value in small.state_dict().items():
        name = caffe2_name(key, (1, 1, 1, 1))
        if name is not None:
            blobs[name] = value.numpy().astype(np.float32)
    blobs["pred_b_momentum"] = np.zeros_like(blobs["pred_b"])
    with open(OUT / "caffe2_slowfast_d18_w2.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    io = {"slow": slow, "fast": fast, "pytorchvideo_logits": logits, "caffe2_logits": small_logits}
    save_file({k: v.contiguous() for k, v in io.items()}, OUT / "io.safetensors")

    from pytorchvideo.models.hub import slowfast_r50, slowfast_r101

    keys = {
        name: {k: list(v.shape) for k, v in hub().state_dict().items()}
        for name, hub in (("slowfast_r50", slowfast_r50), ("slowfast_r101", slowfast_r101))
    }
    with gzip.GzipFile(
        OUT / "pytorchvideo_hub_keys.json.gz", "wb", mtime=0
    ) as g:  # mtime 0: same bytes
        g.write(json.dumps(keys, sort_keys=True).encode())
    for path in sorted(OUT.rglob("*.*")):
        print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")
    print("logits", logits.flatten().tolist(), "\nsmall", small_logits.flatten().tolist())


if __name__ == "__main__":
    main()
