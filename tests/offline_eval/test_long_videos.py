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
    # every classified window is read on its own and lands in exactly one bucket
    for r in rows.values():
        assert sum(w["windows"] for w in r["windows"]) == 2 * r["mean_windows"]


def test_window_readings_bucket_windows_by_how_much_of_the_event_they_hold() -> None:
    from offline.evaluation.long import summarise_windows, window_readings
    from service.schemas import LabelScore, WindowOut

    record = {"event_start_s": 10.0, "event_end_s": 12.0, "event_box": [0, 0, 20, 20],
              "class_name": "slide_left"}  # fmt: skip

    def win(t0: float, box: list[int], label: str) -> WindowOut:
        top = {"h": LabelScore(label=label, index=0, score=0.9)}
        return WindowOut(start_s=t0, end_s=t0 + 2.0, saliency=0.5, box=box, heads=top)

    windows = [
        win(10.0, [0, 0, 40, 40], "slide_left"),  # fills the window, crop holds the box: right
        win(10.0, [100, 100, 40, 40], "background"),  # fills it, crop misses the box
        win(11.5, [0, 0, 40, 40], "slide_left"),  # a quarter of the window
        win(20.0, [0, 0, 40, 40], "background"),  # no event
    ]
    seen = window_readings(windows, record, "h")
    assert [round(w["event_fill"], 2) for w in seen] == [1.0, 1.0, 0.25, 0.0]
    buckets = {
        (b["event_fill"], b["box_hit"]): b for b in summarise_windows([{"window_readings": seen}])
    }
    assert buckets[(">= 0.6", True)]["top1"] == 1.0
    assert buckets[(">= 0.6", False)]["called_background"] == 1.0
    assert buckets[("< 0.6", None)]["windows"] == 1 and buckets[("none", None)]["top1"] == 0.0
