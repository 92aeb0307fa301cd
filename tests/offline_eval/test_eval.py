"""``avserve eval short|long`` on a few generated clips with tiny random packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from models.package import read_config
from offline.data.avsynth.classes import CLASS_NAMES, pairs
from offline.evaluation.long import window_hits
from offline.evaluation.short import score_model
from offline.evaluation.stats import wilson_interval
from service.cli import app
from service.schemas import WindowOut

from .conftest import tiny_package

PNG = b"\x89PNG\r\n\x1a\n"


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--threads", "1", "--no-progress"])
    assert result.exit_code == 0, result.output


def _in_unit(acc: dict[str, Any]) -> None:
    lo, hi = acc["ci95"]
    assert 0 <= lo <= acc["top1"] <= hi <= 1 and acc["correct"] <= acc["n"]


def test_eval_short_reports_every_model_class_and_pair(
    clips_dir: Path, heavy_dir: Path, tmp_path: Path
) -> None:
    audio = tiny_package(tmp_path / "audio", "audionet_tiny", seed=1)
    out = tmp_path / "eval"
    _run(["eval", "short", "--data", str(clips_dir), "--model", f"av={heavy_dir}",
          "--model", f"audio={audio}", "--out", str(out), "--limit", "3",
          "--claim", "audio"])  # fmt: skip
    report = json.loads((out / "eval_short.json").read_text())
    claims = read_config(audio).metadata["claims"]
    assert claims["short_test_top1"] == report["models"]["audio"]["overall"]["top1"]
    assert claims["short_test_clips"] == 3 and "claims" not in read_config(heavy_dir).metadata
    assert (out / "eval_short.png").read_bytes()[:8] == PNG
    assert report["clips"] == 3 and report["machine"]["cores"] >= 1
    assert set(report["models"]) == {"av", "audio"}
    for r in report["models"].values():
        _in_unit(r["overall"])
        assert r["overall"]["n"] == 3 and set(r["per_class"]) == set(CLASS_NAMES)
        assert set(r["pairs"]) == set(pairs()) and r["wall_ms_per_clip"] > 0
        for p in r["pairs"].values():
            _in_unit(p["binary"])
    assert report["models"]["audio"]["gmacs_per_clip"] < report["models"]["av"]["gmacs_per_clip"]


def test_eval_long_runs_every_policy_through_the_pipeline(
    clips_dir: Path, glance_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    _run(["eval", "long", "--data", str(clips_dir), "--package", str(glance_run / "package"),
          "--ks", "1,2", "--out", str(out), "--limit", "2"])  # fmt: skip
    report = json.loads((out / "eval_long.json").read_text())
    assert (out / "eval_long.png").read_bytes()[:8] == PNG
    rows = {(r["policy"], r["k"]): r for r in report["results"]}
    want = {(p, k) for p in ("glance", "heuristic", "uniform") for k in (1, 2)} | {("dense", None)}
    assert set(rows) == want and report["videos"] == 2
    for r in rows.values():
        _in_unit(r)
        assert r["n"] == 2 and r["wall_ms_per_video"] > 0
        if r["policy"] != "dense":
            assert 0 <= r["box_hit_rate"] <= r["hit_rate"] <= 1
    dense = rows[("dense", None)]
    assert dense["pct_of_dense_gmacs"] == pytest.approx(100.0)
    assert dense["gmacs_per_video"] > rows[("glance", 2)]["gmacs_per_video"]
    assert (
        rows[("glance", 1)]["glance_gmacs_per_video"]
        > 0
        == rows[("uniform", 1)]["glance_gmacs_per_video"]
    )


def test_eval_long_refuses_unknown_policies(clips_dir: Path, heavy_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "long",
            "--data",
            str(clips_dir),
            "--package",
            str(heavy_dir),
            "--policies",
            "oracle",
        ],
    )
    assert result.exit_code != 0


def test_wilson_interval_brackets_the_rate_and_narrows_with_n() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and 0.25 < hi < 0.31  # a rule-of-three-like bound, not [0, 0]
    lo, hi = wilson_interval(10, 10)
    assert 0.69 < lo < 0.75 and hi == 1
    small, large = wilson_interval(5, 10), wilson_interval(500, 1000)
    assert small[0] < large[0] < 0.5 < large[1] < small[1]


def test_pair_scores_isolate_the_confused_pair() -> None:
    labels = np.arange(len(CLASS_NAMES)).repeat(4)
    logits = np.eye(len(CLASS_NAMES))[labels] * 5
    # The model cannot tell ball_thud (0) from ball_chime (1): it always says ball_chime.
    logits[labels == 0] = np.eye(len(CLASS_NAMES))[1] * 5
    r = score_model(logits, labels, CLASS_NAMES)
    assert r["pairs"]["ball"]["binary"]["top1"] == 0.5 and r["pairs"]["ball"]["top1"] == 0.5
    assert all(p["top1"] == 1.0 for name, p in r["pairs"].items() if name != "ball")
    assert r["per_class"]["ball_thud"]["top1"] == 0 and r["overall"]["correct"] == len(labels) - 4


def test_window_hits_need_time_overlap_and_half_the_event_box() -> None:
    rec = {"event_start_s": 10.0, "event_end_s": 12.0, "event_box": [100, 0, 50, 50]}
    miss = WindowOut(start_s=0.0, end_s=2.0, saliency=0.5, box=[100, 0, 50, 50])
    off = WindowOut(start_s=11.0, end_s=13.0, saliency=0.5, box=[0, 0, 110, 110])
    on = WindowOut(start_s=9.0, end_s=11.0, saliency=0.5, box=[90, 0, 80, 80])
    assert window_hits([miss], rec) == (False, False)
    assert window_hits([miss, off], rec) == (True, False)
    assert window_hits([off, on], rec) == (True, True)
