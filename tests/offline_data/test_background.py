"""Background clips: content of none of the classes, in every kind, in a generated set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from offline.data.avsynth.background import (
    KINDS,
    background_audio,
    background_spec,
    iter_background_frames,
)
from offline.data.avsynth.classes import CLASS_NAMES, NUM_CLASSES
from offline.data.avsynth.generate import GenerateConfig, generate, read_manifest
from service.errors import AvserveError


def test_every_background_kind_is_drawn_and_the_draw_is_deterministic() -> None:
    kinds = Counter(background_spec(seed)[1] for seed in range(300))
    assert set(kinds) == set(KINDS)
    assert [background_spec(s) for s in range(20)] == [background_spec(s) for s in range(20)]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_renders_frames_of_its_format_and_a_sound_bed(kind: str) -> None:
    seed = next(s for s in range(500) if background_spec(s)[1] == kind)
    spec, _ = background_spec(seed)
    frames = list(iter_background_frames(spec, kind))
    assert len(frames) == spec.num_frames
    assert frames[0].shape == (spec.height, spec.width, 3) and frames[0].dtype == np.uint8
    assert float(np.std(frames[len(frames) // 2])) > 1.0  # a picture, not a flat frame
    audio = background_audio(spec, kind)
    assert audio.shape == (spec.channels, spec.num_samples)
    assert float(np.abs(audio).max()) <= 1.0
    if kind == "quiet":
        assert float(np.abs(audio).max()) < 1e-3


def test_a_set_with_background_labels_it_after_the_classes(tmp_path: Path) -> None:
    out = tmp_path / "set"
    generate(GenerateConfig(out=out, split="short", subset="val", count=2, background=3, seed=1))
    records = read_manifest(out)
    assert [r["class_name"] for r in records[2:]] == ["background"] * 3
    assert {r["label"] for r in records[2:]} == {NUM_CLASSES}
    assert all((out / r["file"]).stat().st_size > 1000 for r in records)
    labels = json.loads((out / "labels.json").read_text())
    assert labels["names"] == [*CLASS_NAMES, "background"]
    assert labels["background"] == "background"
    assert labels["flip_label_map"][NUM_CLASSES] == NUM_CLASSES
    assert ["ball_thud", "ball_chime"] in labels["audio_groups"]


def test_background_clips_come_with_the_short_split_only(tmp_path: Path) -> None:
    with pytest.raises(AvserveError):
        GenerateConfig(out=tmp_path, split="long", count=1, background=1).validate()
