"""``avserve model import --format pytorchvideo|caffe2`` through the real typer app."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from models import load_package
from service.cli import app

ZOO = Path(__file__).resolve().parents[1] / "fixtures" / "zoo"
runner = CliRunner()


def _import(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["model", "import", *args])
    return result.exit_code, result.output


def test_pytorchvideo_import_writes_a_package_with_the_reference_outputs(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    code, output = _import(
        "--format",
        "pytorchvideo",
        str(ZOO / "pytorchvideo_slowfast_r50_w2.pyth"),
        "--out",
        str(out),
    )
    assert code == 0, output
    assert "slowfast_r50_8x8" in output and "8 Slow / 32 Fast frames" in output
    # 10 classes match no shipped set: say so instead of silently naming them class_N.
    assert "warning" in output and "class_0..class_9" in output
    pkg = load_package(out)
    prep = pkg.config.preprocessing
    assert (prep.num_frames, prep.alpha, prep.sampling_rate, prep.crop_size) == (32, 4, 2, 224)
    io = load_file(ZOO / "io.safetensors")
    with torch.no_grad():
        logits = pkg.model(io["slow"].float(), io["fast"].float())
    assert (logits - io["pytorchvideo_logits"]).abs().max() <= 1e-5


def test_kinetics400_labels_are_chosen_for_a_400_class_zoo_checkpoint(tmp_path: Path) -> None:
    state = torch.load(ZOO / "pytorchvideo_slowfast_r50_w2.pyth", weights_only=True)
    sd = dict(state["model_state"])
    sd["blocks.6.proj.weight"] = torch.zeros(400, sd["blocks.6.proj.weight"].shape[1])
    sd["blocks.6.proj.bias"] = torch.zeros(400)
    ckpt = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": sd}, ckpt)
    code, output = _import("--format", "pytorchvideo", str(ckpt), "--out", str(tmp_path / "k"))
    assert code == 0, output
    assert "labels: kinetics400" in output and "warning" not in output
    labels = load_package(tmp_path / "k").labels["kinetics"]
    assert (labels[0], labels[399]) == ("abseiling", "zumba")
    # An explicit --labels wins; one that does not fit the head is a clean error.
    code, output = _import(
        "--format", "pytorchvideo", str(ckpt), "--out", str(tmp_path / "x"), "--labels", "nope"
    )
    assert code == 1 and "neither a file nor a shipped label set" in output
    assert not (tmp_path / "x").exists()


def test_caffe2_import_writes_a_package_and_takes_a_label_set_by_name(tmp_path: Path) -> None:
    labels = tmp_path / "l.txt"
    labels.write_text("".join(f"c{i}\n" for i in range(10)))
    out = tmp_path / "pkg"
    ckpt = str(ZOO / "caffe2_slowfast_d18_w2.pkl")
    code, output = _import("--format", "caffe2", ckpt, "--out", str(out), "--labels", str(labels))
    assert code == 0, output
    pkg = load_package(out)
    assert pkg.labels["kinetics"][9] == "c9"
    io = load_file(ZOO / "io.safetensors")
    with torch.no_grad():
        logits = pkg.model(io["slow"].float(), io["fast"].float())
    assert (logits - io["caffe2_logits"]).abs().max() <= 1e-5
    code, output = _import(
        "--format", "caffe2", ckpt, "--out", str(tmp_path / "k"), "--labels", "kinetics400"
    )
    assert code == 1 and "10 classes, 400 labels" in output


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_an_unsafe_pickle_is_refused_by_the_cli_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "SLOWFAST_8x8_R50.pkl"
    evil.write_bytes(pickle.dumps({"blobs": {"pred_w": _System(marker)}}, protocol=2))
    code, output = _import("--format", "caffe2", str(evil), "--out", str(tmp_path / "o"))
    assert code == 1 and "refused" in output
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_the_format_is_detected_when_not_given(fixtures_dir: Path, tmp_path: Path) -> None:
    from models.checkpoint_detect import detect_format

    ptv = ZOO / "pytorchvideo_slowfast_r50_w2.pyth"
    assert detect_format(ptv) == "pytorchvideo"
    assert detect_format(ZOO / "caffe2_slowfast_d18_w2.pkl") == "caffe2"
    assert detect_format(fixtures_dir / "pyslowfast_slowfast" / "checkpoint.pyth") == "pyslowfast"
    legacy = tmp_path / "legacy.pyth"  # torch.save's pre-zip format
    state = torch.load(ptv, weights_only=True)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert detect_format(legacy) == "pytorchvideo"
    other = tmp_path / "other.pyth"
    torch.save({"model_state": {"fc.weight": torch.zeros(2, 2)}}, other)
    assert detect_format(other) is None
    code, output = _import(str(legacy), "--out", str(tmp_path / "pkg"))
    assert code == 0, output
    assert "format: pytorchvideo (detected)" in output
    code, output = _import(str(other), "--out", str(tmp_path / "o"))
    assert code == 1 and "pass --format" in output
