"""Glance training and evaluation on real 30-60 s AVSynth long videos (slow: ~10 s to encode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offline.data.avsynth.classes import labels_json
from offline.data.avsynth.clip import write_clip
from offline.data.avsynth.generate import file_name, write_manifest
from offline.data.avsynth.scene import sample_spec
from service.cli import app

from .conftest import train_glance


def _cheap_long_set(out: Path, count: int) -> Path:
    """The ``count`` cheapest long videos among the first seeds, with a manifest."""
    specs = sorted(
        (sample_spec(s, "long") for s in range(40)), key=lambda s: s.num_frames * s.width * s.height
    )
    out.mkdir(parents=True)
    records = []
    for i, spec in enumerate(specs[:count]):
        name = file_name("long", "test", i)
        records.append({"file": name, "index": i, "subset": "test", **write_clip(out / name, spec)})
    write_manifest(out, records)
    (out / "labels.json").write_text(labels_json())
    return out


@pytest.mark.slow
def test_glance_trains_and_is_evaluated_on_long_videos(heavy_dir: Path, tmp_path: Path) -> None:
    data = _cheap_long_set(tmp_path / "long", 2)
    run = tmp_path / "run"
    train_glance(heavy_dir, data, run)
    out = tmp_path / "eval"
    args = ["eval", "long", "--data", str(data), "--package", str(run / "package"), "--ks", "2",
            "--policies", "glance,uniform", "--out", str(out), "--threads", "1", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval_long.json").read_text())
    durations = [
        json.loads(x)["duration_s"] for x in (data / "manifest.jsonl").read_text().splitlines()
    ]
    assert min(durations) >= 30
    rows = {r["policy"]: r for r in report["results"]}
    assert set(rows) == {"glance", "uniform"} and rows["glance"]["mean_windows"] == 2
    assert rows["glance"]["gmacs_per_video"] > rows["uniform"]["gmacs_per_video"]
    assert all(0 <= r["box_hit_rate"] <= r["hit_rate"] <= 1 for r in rows.values())
