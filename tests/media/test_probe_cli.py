"""``avserve probe FILE --json``: what the policy sees, or the error code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def test_probe_json_reports_streams_duration_fps_rotation_and_audio(media_dir: Path) -> None:
    result = runner.invoke(app, ["probe", str(media_dir / "decord__video_90.mov"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["video"]["rotation"] == 90
    assert (report["video"]["width"], report["video"]["height"]) == (320, 568)
    assert report["video"]["fps"] == 30.0
    assert report["duration_s"] == 0.1
    assert report["audio_present"] is False
    assert [s["kind"] for s in report["streams"]] == ["video"]


def test_probe_json_marks_the_chosen_streams(media_dir: Path) -> None:
    result = runner.invoke(app, ["probe", str(media_dir / "torchcodec__nasa_13013.mp4"), "--json"])
    report = json.loads(result.output)
    selected = [(s["index"], s["kind"]) for s in report["streams"] if s["selected"]]
    assert selected == [(3, "video"), (4, "audio")]
    assert report["audio_present"] is True and report["audio"]["sample_rate"] == 16000


def test_probe_prints_the_error_code_of_a_refused_file(media_dir: Path) -> None:
    result = runner.invoke(app, ["probe", str(media_dir / "mdn-sa__guitar.ogg"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == "no_video_stream"


def test_probe_table_output_names_the_video_stream(media_dir: Path) -> None:
    result = runner.invoke(app, ["probe", str(media_dir / "mmaction2__test.avi")])
    assert result.exit_code == 0
    assert "mpeg4" in result.output and "44100 Hz" in result.output


def test_probe_reports_the_keyframe_index_and_read_plan(media_dir: Path) -> None:
    result = runner.invoke(app, ["probe", str(media_dir / "mmaction2__demo.mp4"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "keyframes_s" not in report["video"]  # summarised, not listed
    plan = report["decode_plan"]
    assert plan["index"]["source"] == "container" and plan["index"]["keyframes"] == 4
    glance = plan["glance"]
    assert glance["gops"] == 4 and glance["seeks"] >= 1
    assert glance["frames_est"] < glance["sequential_frames_est"] < plan["full_frames_est"]
    table = runner.invoke(app, ["probe", str(media_dir / "mmaction2__demo.mp4")])
    assert "decode plan" in table.output and "4 keyframes" in table.output
