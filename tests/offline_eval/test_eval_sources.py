"""``avserve eval short`` and the glance's video list on user sources (class folders, lists)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from models import load_package
from offline.data.export import write_class_folders
from offline.evaluation.short import score_named
from offline.glance.data import video_records
from service.cli import app


def test_eval_short_scores_a_class_folder_tree_by_class_name(
    clips_dir: Path, heavy_dir: Path, tmp_path: Path
) -> None:
    videos = write_class_folders(clips_dir, tmp_path / "videos")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, [
        "eval", "short", "--data", str(videos), "--model", f"av={heavy_dir}", "--out", str(out),
        "--threads", "1", "--no-progress",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval_short.json").read_text())
    classes = sorted(p.name for p in videos.iterdir())
    r = report["models"]["av"]
    assert report["clips"] == len(list(videos.rglob("*.mp4"))) and report["class_names"] == classes
    assert set(r["per_class"]) == set(classes) and r["pairs"] == {}
    assert r["overall"]["n"] == report["clips"]


def test_score_named_compares_through_label_names_not_indices() -> None:
    names = ["cat", "dog", "owl"]
    logits = np.array([[0.0, 5.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    scores = score_named(logits, ["dog", "owl", "owl"], names)
    assert scores["overall"]["correct"] == 2
    assert scores["per_class"]["owl"]["top1"] == 0.5


def test_glance_records_map_labels_to_the_heavy_model_by_name(
    clips_dir: Path, heavy_dir: Path, tmp_path: Path
) -> None:
    videos = write_class_folders(clips_dir, tmp_path / "videos")
    first = sorted(videos.iterdir())[0]
    first.rename(videos / "not_a_heavy_class")
    heavy = load_package(heavy_dir)
    labels = heavy.labels[heavy.heads[0].name]
    records = video_records(videos, labels)
    by_class = {Path(r["file"]).parent.name: r["label"] for r in records}
    assert by_class.pop("not_a_heavy_class") == -1  # the heavy model's own prediction stands in
    assert by_class == {name: labels.index(name) for name in by_class}
    assert all(Path(r["file"]).is_absolute() for r in records)
