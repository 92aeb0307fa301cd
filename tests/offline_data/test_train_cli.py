"""``avserve train avslowfast`` end to end on a tiny generated set (CPU smoke test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models import load_package
from offline.data.avsynth.classes import CLASS_NAMES
from service.cli import app


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


def _train(data: Path, out: Path, epochs: int) -> None:
    args = ["train", "avslowfast", "--data", str(data), "--val-data", str(data),
            "--out", str(out), "--arch", "avslowfast_tiny", "--epochs", str(epochs),
            "--batch-size", "4", "--crop-size", "32", "--cache-side", "40",
            "--steps-per-epoch", "2", "--no-progress", "--avs-weight", "1.0"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_train_command_trains_resumes_and_writes_a_loadable_package(
    tiny_set: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    _train(tiny_set, run, epochs=1)
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["event"] == "eval"] == [1]
    package = load_package(run / "package")
    assert next(iter(package.labels.values())) == tuple(CLASS_NAMES)
    assert package.config.preprocessing.crop_size == 32

    _train(tiny_set, run, epochs=2)  # continues from epoch 1 instead of starting over
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert any(r["event"] == "resume" and r["epoch"] == 1 for r in log)
    assert [r["epoch"] for r in log if r["event"] == "eval"] == [1, 2]
    assert all(r["loss"] == r["loss"] for r in log if r["event"] == "train")


def test_train_command_reports_a_missing_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "avslowfast", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "manifest" in result.output


@pytest.mark.slow
def test_train_command_mixes_sets_into_training_and_records_them(
    tiny_set: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = ["train", "avslowfast", "--data", str(tiny_set), "--mix", f"{tiny_set}:event",
            "--out", str(run), "--arch", "avslowfast_tiny", "--epochs", "1", "--batch-size", "4",
            "--crop-size", "32", "--cache-side", "40", "--steps-per-epoch", "1", "--no-progress",
            "--no-package"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tiny_set / ".cache-40-event" / "cache.json").is_file()  # the mixed set's own cache
    assert json.loads((run / "run.json").read_text())["mix"] == [f"{tiny_set}:event"]


@pytest.mark.slow
def test_edge_windows_train_from_their_own_cache_once_they_join(
    tiny_set: Path, tmp_path: Path
) -> None:
    import shutil

    from offline.data.avsynth.classes import labels_json

    from .conftest import write_long_set

    short, long_set, run = tmp_path / "short", tmp_path / "long", tmp_path / "run"
    shutil.copytree(tiny_set, short, ignore=shutil.ignore_patterns(".cache*"))
    (short / "labels.json").write_text(labels_json(background=True))  # views hold background
    long_set.mkdir()
    write_long_set(long_set)
    args = ["train", "avslowfast", "--data", str(short), "--mix", f"{long_set}:views",
            "--edge-views", "2", "--edge-from-epoch", "1", "--out", str(run), "--arch",
            "avslowfast_tiny", "--epochs", "2", "--batch-size", "4", "--crop-size", "32",
            "--cache-side", "40", "--steps-per-epoch", "1", "--no-progress", "--no-package"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    views = json.loads((long_set / ".cache-40-views" / "cache.json").read_text())
    edges = json.loads((long_set / ".cache-40-edges" / "cache.json").read_text())
    assert views["config"]["edge_views"] == 0  # the rest of the views train from epoch 0
    assert edges["files"] == ["long.mp4"] * 2  # the two edge windows, in a cache of their own
    assert json.loads((run / "run.json").read_text())["edge_from_epoch"] == 1


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--mix", "{data}", "SET:REGION"),
        ("--mix", "{data}:corner", "SET:REGION"),
        ("--mix", "{missing}:views", "not a generated AVSynth set"),
        ("--val-mix", "{data}:views", "--val-mix needs --val-data"),
        ("--edge-from-epoch", "10", "must be below --epochs"),  # default --epochs 10
    ],
)
def test_train_command_rejects_a_bad_mix_with_one_line(
    tiny_set: Path, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    spec = value.format(data=tiny_set, missing=tmp_path / "nothing")
    args = ["train", "avslowfast", "--data", str(tiny_set), "--out", str(tmp_path / "r"),
            flag, spec, "--crop-size", "32", "--cache-side", "40"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps long lines
    assert message in said and "Traceback" not in said
