"""``avserve train avslowfast --init PACKAGE`` on a user source: frozen stages, early stopping
on validation accuracy, resume (CPU smoke test on a tiny generated set)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from models import load_package
from offline.data.export import write_class_folders, write_csv
from service.cli import app


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


COMMON = ["--batch-size", "2", "--crop-size", "32", "--cache-side", "40", "--steps-per-epoch",
          "1", "--no-progress", "--threads", "1"]  # fmt: skip


def _train(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", "avslowfast", *args, *COMMON])
    return result.exit_code, result.output


def _log(run: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_fine_tuning_from_a_package_freezes_stops_early_and_resumes(
    tiny_set: Path, tmp_path: Path
) -> None:
    folders = write_class_folders(tiny_set, tmp_path / "videos")
    base = tmp_path / "base"
    code, out = _train("--data", str(folders), "--out", str(base), "--epochs", "1")
    assert code == 0, out

    # a CSV with a new label set: two known classes and one the package never saw
    classes = sorted(p.name for p in folders.iterdir())
    lst = write_csv(tiny_set, tmp_path / "list.csv")
    rows = lst.read_text().splitlines()
    keep = [r for r in rows[1:] if r.split(",")[1] in classes[:3]]
    renamed = [r.replace(classes[2], "brand_new") for r in keep]
    lst.write_text("\n".join([rows[0] + ",split", *(f"{r},train" for r in renamed),
                              *(f"{r},val" for r in renamed)]) + "\n")  # fmt: skip

    run = tmp_path / "ft"
    args = ["--data", str(lst), "--videos-dir", str(tiny_set), "--out", str(run),
            "--init", str(base / "package"), "--freeze-until", "res5", "--patience", "1",
            "--lr", "1e-9"]  # fmt: skip
    code, out = _train(*args, "--epochs", "2")
    assert code == 0, out
    package = load_package(run / "package")
    assert next(iter(package.labels.values())) == (classes[0], classes[1], "brand_new")
    base_w = load_file(str(base / "checkpoints" / "last.safetensors"))
    ft_w = load_file(str(run / "checkpoints" / "last.safetensors"))
    frozen = [k for k in ft_w if k.split(".")[0] in ("conv1", "res2", "res3", "res4", "res5")]
    assert frozen and all((ft_w[k] == base_w[k]).all() for k in frozen)
    info = json.loads((run / "run.json").read_text())
    assert info["freeze"][:5] == ["conv1", "res2", "res3", "res4", "res5"]

    # all but the head frozen, lr ~0: val accuracy cannot improve after epoch 1, so
    # patience 1 ends the run after epoch 2 ...
    code, out = _train(*args, "--epochs", "5")
    assert code == 0, out
    log = _log(run)
    assert [r["epoch"] for r in log if r["event"] == "eval"] == [1, 2]
    assert any(r["event"] == "early_stop" for r in log)
    # ... and a resume with another freeze set is refused instead of mixing two recipes
    code, out = _train(*[a if a != "res5" else "res2" for a in args], "--epochs", "5")
    assert code == 2 and "--freeze" in out


def test_patience_needs_validation_data(tiny_set: Path, tmp_path: Path) -> None:
    folders = write_class_folders(tiny_set, tmp_path / "videos")
    code, out = _train("--data", str(folders), "--out", str(tmp_path / "r"), "--patience", "2")
    assert code == 2 and "patience" in out
