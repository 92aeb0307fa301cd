"""PyTorchVideo and Caffe2 (.pkl) model-zoo imports: parity with the reference network's outputs.

The fixtures in tests/fixtures/zoo were written by scripts/make_zoo_fixtures.py: PyTorchVideo's
own ``create_slowfast`` networks (random weights) and the logits they compute.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from models import AVSlowFast, CheckpointError, get_config
from models.checkpoint_caffe2 import UnsafeCheckpointError, import_caffe2, read_caffe2_blobs
from models.checkpoint_fit import fit_slowfast_config, map_state
from models.checkpoint_pytorchvideo import import_pytorchvideo, pytorchvideo_to_ours
from tests.models.helpers_avslowfast import fixture_io

ZOO = Path(__file__).resolve().parents[1] / "fixtures" / "zoo"
PTV_CKPT = ZOO / "pytorchvideo_slowfast_r50_w2.pyth"
C2_CKPT = ZOO / "caffe2_slowfast_d18_w2.pkl"


def _io() -> dict[str, torch.Tensor]:
    return load_file(ZOO / "io.safetensors")


def _check_parity(model: AVSlowFast, reference: torch.Tensor) -> None:
    io = _io()
    with torch.no_grad():
        logits = model.eval()(io["slow"].float(), io["fast"].float())
    assert (logits - reference).abs().max() <= 1e-5
    assert (logits.softmax(-1) - reference.softmax(-1)).abs().max() <= 1e-5
    assert logits.argmax() == reference.argmax()


def test_pytorchvideo_checkpoint_reproduces_pytorchvideo_outputs() -> None:
    result = import_pytorchvideo(PTV_CKPT)
    assert result.report.complete, result.report.summary()
    c = result.model.config
    assert (c.blocks, c.width_per_group, c.beta_inv, c.fusion_kernel) == ((3, 4, 6, 3), 2, 2, 7)
    assert (c.alpha, c.slow_frames, c.total_classes) == (4, 8, 10)  # the zoo's 8x8 recipe
    _check_parity(result.model, _io()["pytorchvideo_logits"])


@pytest.mark.parametrize(
    ("hub", "arch"), [("slowfast_r50", "slowfast_r50_8x8"), ("slowfast_r101", "slowfast_r101_8x8")]
)
def test_full_size_hub_layouts_are_exactly_our_named_configs(hub: str, arch: str) -> None:
    with gzip.open(ZOO / "pytorchvideo_hub_keys.json.gz", "rt") as f:
        shapes = json.load(f)[hub]
    state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    ours = map_state(state, pytorchvideo_to_ours)
    assert len(ours) == len(state)  # every hub entry has a place
    named = get_config(arch)
    assert fit_slowfast_config(named, ours) == named
    with torch.device("meta"):
        model = AVSlowFast(named)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected


def test_caffe2_pickle_reproduces_pytorchvideo_outputs() -> None:
    result = import_caffe2(C2_CKPT)
    assert result.report.complete, result.report.summary()
    assert result.model.config.blocks == (1, 1, 1, 1)
    _check_parity(result.model, _io()["caffe2_logits"])


def test_arch_sets_what_the_weights_cannot_tell() -> None:
    result = import_caffe2(C2_CKPT, arch="slowfast_r50_4x16")
    c = result.model.config
    assert (c.alpha, c.slow_frames) == (8, 4)
    assert (c.width_per_group, c.fusion_kernel, c.total_classes) == (2, 7, 10)  # from the blobs


class _System:
    """Unpickling this would run a shell command (pickle calls what __reduce__ names)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_pickles_that_call_code_are_refused_and_never_run(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    top = tmp_path / "top.pkl"
    top.write_bytes(pickle.dumps(_System(marker), protocol=protocol))
    nested = tmp_path / "nested.pkl"
    payload = {"blobs": {"pred_w": np.zeros((2, 2), np.float32), "x": _System(marker)}}
    nested.write_bytes(pickle.dumps(payload, protocol=protocol))
    for path in (top, nested):
        with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|os\.system"):
            import_caffe2(path)
    assert not marker.exists()
    assert UnsafeCheckpointError.code == "unsafe_checkpoint"
    assert issubclass(UnsafeCheckpointError, CheckpointError)


class _Call:
    def __init__(self, fn: object, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[object, ...]:
        return (self.fn, self.args)


def test_other_globals_are_refused_too(tmp_path: Path) -> None:
    evil = tmp_path / "eval.pkl"
    evil.write_bytes(pickle.dumps({"blobs": _Call(eval, "1 + 1")}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"builtins\.eval"):
        read_caffe2_blobs(evil)
    codec = tmp_path / "codec.pkl"  # _codecs.encode is allowed for latin1 bytes only
    codec.write_bytes(pickle.dumps(_Call(codecs.encode, "x", "zlib"), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="encoding"):
        read_caffe2_blobs(codec)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_blob_pickles_of_every_protocol_load(tmp_path: Path, protocol: int) -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    blobs = OrderedDict([("pred_w", w), ("pred_b", np.ones(3, np.float64)), ("lr", 0.1)])
    path = tmp_path / "b.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs, "model_iter": 7}, protocol=protocol))
    got = read_caffe2_blobs(path)
    assert set(got) == {"pred_w", "pred_b"}  # numbers that are not arrays are no weights
    assert torch.equal(got["pred_w"], torch.from_numpy(w))
    assert got["pred_b"].dtype == torch.float32


def test_malformed_blob_files_fail_with_checkpoint_errors(tmp_path: Path) -> None:
    cases = {
        "junk.pkl": b"not a pickle",
        "list.pkl": pickle.dumps([1, 2, 3], protocol=2),
        "objects.pkl": pickle.dumps({"blobs": {"w": np.array(["a"], dtype=object)}}, protocol=2),
        "slow_only.pkl": pickle.dumps(
            {"blobs": {"conv1_w": np.zeros((4, 3, 1, 7, 7), np.float32)}}, protocol=2
        ),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError):
            import_caffe2(tmp_path / name)
    with pytest.raises(CheckpointError, match="only SlowFast"):
        import_caffe2(tmp_path / "slow_only.pkl")


def test_pytorchvideo_import_refuses_other_layouts(tmp_path: Path) -> None:
    other = tmp_path / "pyslowfast_named.pyth"
    torch.save({"model_state": {"s1.pathway0_stem.conv.weight": torch.zeros(2, 3, 1, 7, 7)}}, other)
    with pytest.raises(CheckpointError, match="SlowFast"):
        import_pytorchvideo(other)
    state = torch.load(PTV_CKPT, weights_only=True)["model_state"]
    fewer = {
        k: v for k, v in state.items() if "blocks.3.multipathway_blocks.1.res_blocks.5" not in k
    }
    torch.save({"model_state": fewer}, tmp_path / "uneven.pyth")
    with pytest.raises(CheckpointError, match="res4"):
        import_pytorchvideo(tmp_path / "uneven.pyth")


def test_pyslowfast_trained_pytorchvideo_files_use_their_cfg(tmp_path: Path) -> None:
    # PySlowFast's PyTorchVideo zoo (`pysf_model_zoo`) wraps the network in `.model` and
    # embeds its cfg, which knows what the weights cannot: alpha, frames, test crop.
    state = torch.load(PTV_CKPT, weights_only=True)["model_state"]
    cfg = {
        "MODEL": {"ARCH": "slowfast", "NUM_CLASSES": 10, "MODEL_NAME": "PTVSlowFast"},
        "SLOWFAST": {"ALPHA": 8, "BETA_INV": 8, "FUSION_KERNEL_SZ": 7},
        "RESNET": {"DEPTH": 50, "WIDTH_PER_GROUP": 64},
        "DATA": {"NUM_FRAMES": 32, "SAMPLING_RATE": 2, "TEST_CROP_SIZE": 256},
        "TRAIN": {"DATASET": "kinetics"},
    }
    ckpt = tmp_path / "SLOWFAST_4x16_R50.pyth"
    model_state = {f"model.{k}": v for k, v in state.items()}
    torch.save({"model_state": model_state, "cfg": yaml.safe_dump(cfg)}, ckpt)
    result = import_pytorchvideo(ckpt)
    assert result.report.complete, result.report.summary()
    c = result.model.config
    assert (c.alpha, c.slow_frames, c.width_per_group, c.beta_inv) == (8, 4, 2, 2)
    assert result.preprocessing is not None and result.preprocessing.crop_size == 256


_C2_BN_NAME = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}


def _pyslowfast_to_caffe2(key: str, blocks: tuple[int, ...]) -> str | None:
    """PySlowFast's PyTorch name -> its Caffe2 blob name (the inverse of its documented rules)."""
    *path, leaf = key.split(".")
    if leaf == "num_batches_tracked":
        return None
    if path[0] == "head":
        return f"pred_{leaf[0]}"
    stage = int(path[0][1])
    if path[0].endswith("_fuse"):
        base = "t_pool1" if stage == 1 else f"t_res{stage}_{blocks[stage - 2] - 1}_branch2c_bn"
        return (
            f"{base}_subsample_w"
            if path[1] == "conv_f2s"
            else f"{base}_subsample_bn_{_C2_BN_NAME[leaf]}"
        )
    t = "t_" if path[1].startswith("pathway1") else ""
    if stage == 1:
        return f"{t}conv1_w" if path[2] == "conv" else f"{t}res_conv1_bn_{_C2_BN_NAME[leaf]}"
    block = f"{t}res{stage}_{path[1].split('_res')[1]}_branch"
    if path[2] in ("branch1", "branch1_bn"):
        return f"{block}1_w" if path[2] == "branch1" else f"{block}1_bn_{_C2_BN_NAME[leaf]}"
    letter = path[3][0]
    return (
        f"{block}2{letter}_w" if len(path[3]) == 1 else f"{block}2{letter}_bn_{_C2_BN_NAME[leaf]}"
    )


def test_caffe2_names_of_the_official_slowfast_reproduce_pyslowfast_outputs(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    """The shared PySlowFast SlowFast 4x16 fixture, saved under Caffe2 blob names: a second
    reference (PySlowFast's own network, 3-6 blocks per stage, alpha 8) for the .pkl path."""
    ckpt, inputs, logits, probs = fixture_io(fixtures_dir, "pyslowfast_slowfast")
    state = torch.load(ckpt, weights_only=True, map_location="cpu")["model_state"]
    blobs = {}
    for key, value in state.items():
        name = _pyslowfast_to_caffe2(key, (3, 4, 6, 3))
        if name is not None:
            blobs[name] = value.numpy()
    path = tmp_path / "SLOWFAST_4x16_R50.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    result = import_caffe2(path)  # no --arch: the 5-tap lateral picks the 4x16 recipe
    assert result.report.complete, result.report.summary()
    assert (result.model.config.name, result.model.config.alpha) == ("slowfast_r50_4x16", 8)
    with torch.no_grad():
        ours = result.model.eval()(*inputs)
    assert (ours - logits).abs().max() <= 1e-4
    assert (ours.softmax(-1) - probs).abs().max() <= 1e-5
    assert ours.argmax() == logits.argmax()
