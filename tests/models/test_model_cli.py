"""``avserve model info | import | export`` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from models import build_model, load_package, save_package
from service.cli import app
from tests.models.helpers_avslowfast import fixture_io

runner = CliRunner()


def test_model_info_reports_params_and_gmacs_as_json() -> None:
    result = runner.invoke(
        app, ["model", "info", "--arch", "avslowfast_r50_4x16", "--crop", "256", "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["params_inference"] < info["params_total"]
    assert abs(info["params_inference"] - 41.82e6) / 41.82e6 < 0.01
    assert 39.2 < info["gmacs"] < 40.2
    assert info["inputs"]["audio"] == [1, 1, 128, 80]
    assert info["inputs"]["slow"] == [1, 3, 4, 256, 256]


def test_model_info_rejects_unknown_architectures() -> None:
    result = runner.invoke(app, ["model", "info", "--arch", "resnet_nope"])
    assert result.exit_code != 0
    assert "unknown arch" in result.output


def test_import_writes_a_package_that_reproduces_the_official_outputs(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    ckpt, inputs, logits, _ = fixture_io(fixtures_dir, "pyslowfast_avslowfast")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"action {i}" for i in range(10)) + "\n")
    out = tmp_path / "pkg"
    args = ["model", "import", "--format", "pyslowfast", str(ckpt), "--out", str(out)]
    result = runner.invoke(app, [*args, "--labels", str(labels), "--name", "fx", "--version", "3"])
    assert result.exit_code == 0, result.output
    pkg = load_package(out)
    assert (pkg.name, pkg.version) == ("fx", "3")
    assert pkg.labels[pkg.heads[0].name][9] == "action 9"
    assert pkg.config.preprocessing.crop_size == 128
    with torch.no_grad():
        assert (pkg.model(*inputs) - logits).abs().max() <= 1e-4


def test_export_command_writes_the_graph_into_the_package(tmp_path: Path) -> None:
    model = build_model("avslowfast_tiny", crop_size=32)
    out = save_package(tmp_path / "pkg", model, name="t", version="1")
    result = runner.invoke(app, ["model", "export", str(out), "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    assert "max |prob diff|" in result.output
    assert (out / "model.ts").is_file()
    assert "torchscript" in json.loads((out / "config.json").read_text())["exports"]
    result = runner.invoke(app, ["model", "export", str(tmp_path), "--format", "onnx"])
    assert result.exit_code == 1 and "config.json" in result.output


def test_import_of_a_non_checkpoint_fails_cleanly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pyth"
    junk.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["model", "import", str(junk), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "error" in result.output
    assert not (tmp_path / "o").exists()
