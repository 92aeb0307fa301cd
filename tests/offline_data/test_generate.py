"""Subsets, seeds, manifest and the ``avserve data avsynth`` command."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from offline.data.avsynth import sample_spec, write_clip
from offline.data.avsynth.classes import CLASS_NAMES, NUM_CLASSES
from offline.data.avsynth.generate import (
    SEED_STRIDE,
    SUBSET_BASE,
    GenerateConfig,
    clip_seed,
    read_manifest,
)
from service.cli import app
from service.errors import AvserveError
from tests.offline_data.test_avsynth_files import assert_same_content


def test_subsets_draw_from_disjoint_seed_ranges_whatever_the_base_seed() -> None:
    ranges = {
        s: (clip_seed(s, 0, 0), clip_seed(s, SEED_STRIDE - 1, SEED_STRIDE - 1)) for s in SUBSET_BASE
    }
    bounds = sorted(ranges.values())
    for (_, hi), (lo, _) in itertools.pairwise(bounds):
        assert hi < lo
    # and within a subset, (base seed, index) -> seed is one-to-one
    seen = {
        clip_seed("train", b, i) for b in range(30) for i in range(SEED_STRIDE - 5, SEED_STRIDE)
    }
    assert len(seen) == 30 * 5


def test_classes_are_balanced_over_consecutive_clips() -> None:
    for subset in SUBSET_BASE:
        labels = [clip_seed(subset, 3, i) % NUM_CLASSES for i in range(5 * NUM_CLASSES)]
        assert sorted(labels) == sorted(list(range(NUM_CLASSES)) * 5)


def test_generated_set_has_files_manifest_csv_and_labels(tiny_set: Path) -> None:
    records = read_manifest(tiny_set)
    assert [r["index"] for r in records] == list(range(NUM_CLASSES))
    assert sorted(r["class_name"] for r in records) == sorted(CLASS_NAMES)
    for rec in records:
        assert (tiny_set / rec["file"]).stat().st_size > 1000
        assert rec["seed"] == clip_seed("train", 7, rec["index"])
        assert rec["event_end_s"] == rec["duration_s"]
    with open(tiny_set / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [r["file"] for r in records]
    assert rows[0]["event_box"] == " ".join(str(v) for v in records[0]["event_box"])
    labels = json.loads((tiny_set / "labels.json").read_text())
    assert labels["names"] == list(CLASS_NAMES)
    info = json.loads((tiny_set / "dataset.json").read_text())
    assert (info["split"], info["subset"], info["seed"], info["count"]) == ("short", "train", 7, 10)


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0}, {"seed": -1}, {"split": "medium"}, {"subset": "dev"}, {"workers": 0}],
)
def test_invalid_generation_arguments_are_typed_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(AvserveError) as err:
        GenerateConfig(out=tmp_path, **kwargs).validate()  # type: ignore[arg-type]
    assert err.value.code == "invalid_request"


def test_missing_manifest_is_a_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(AvserveError) as err:
        read_manifest(tmp_path)
    assert err.value.code == "not_found"


@pytest.mark.slow
def test_cli_generates_with_worker_processes_the_same_files_as_in_process(
    tmp_path: Path, tiny_set: Path
) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["data", "avsynth", "--out", str(out), "--count", "3", "--seed", "7", "--workers", "2"],
    )
    assert result.exit_code == 0, result.output
    records = read_manifest(out)
    assert records == read_manifest(tiny_set)[:3]
    for rec in records:
        assert_same_content(out / rec["file"], tiny_set / rec["file"])


@pytest.mark.slow
def test_long_video_file_lasts_its_declared_duration(tmp_path: Path) -> None:
    specs = [sample_spec(s, "long") for s in range(40)]
    spec = min(specs, key=lambda s: s.num_frames * s.width * s.height)
    meta = write_clip(tmp_path / "long.mp4", spec)
    with av.open(str(tmp_path / "long.mp4")) as c:
        assert c.duration / 1e6 == pytest.approx(meta["duration_s"], abs=0.2)
        assert c.streams.video[0].frames == spec.num_frames


def test_cli_rejects_bad_arguments_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "avsynth", "--out", str(tmp_path), "--split", "medium", "--count", "1"]
    )
    assert result.exit_code == 2
    assert "invalid_request" in result.output
