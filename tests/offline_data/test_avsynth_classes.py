"""Class design: which factors each pair shares, and that shared factors render identically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from offline.data.avsynth import CLASSES, generate_clip, labels_json, sample_spec
from offline.data.avsynth.classes import class_by_name, mirror_index, pairs
from offline.data.avsynth.scene import sample_trajectory


def factors(c):
    return {"appearance": c.look, "motion": c.motion, "sound": c.sound}


def test_there_are_at_least_eight_documented_classes_with_unique_names() -> None:
    assert len(CLASSES) >= 8
    assert len({c.name for c in CLASSES}) == len(CLASSES)
    assert [c.index for c in CLASSES] == list(range(len(CLASSES)))
    assert all(len(c.description) > 20 for c in CLASSES)


def test_each_pair_differs_only_in_its_declared_factor() -> None:
    kinds = set()
    for a, b in pairs().values():
        assert a.differs_in == b.differs_in
        kinds.add(a.differs_in)
        fa, fb = factors(a), factors(b)
        for name in fa:
            if name == a.differs_in:
                assert fa[name] != fb[name], (a.name, b.name, name)
            else:
                assert fa[name] == fb[name], (a.name, b.name, name)
    assert kinds == {"sound", "motion", "appearance"}


def test_labels_json_describes_every_class_and_the_flip_map() -> None:
    doc = json.loads(labels_json())
    assert doc["names"] == [c.name for c in CLASSES]
    assert len(doc["classes"]) == len(CLASSES)
    assert (
        doc["flip_label_map"][class_by_name("slide_left").index]
        == class_by_name("slide_right").index
    )


def test_flip_swaps_only_the_direction_classes() -> None:
    swapped = {c.name for c in CLASSES if mirror_index(c.index) != c.index}
    assert swapped == {"slide_left", "slide_right"}
    assert all(mirror_index(mirror_index(c.index)) == c.index for c in CLASSES)


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("pair", ["ball", "spinner"])
def test_audio_only_pair_renders_identical_frames_but_different_audio(seed: int, pair: str) -> None:
    a, b = pairs()[pair]
    spec = sample_spec(seed)
    ca, cb = generate_clip(spec.with_label(a.index)), generate_clip(spec.with_label(b.index))
    np.testing.assert_array_equal(ca.frames, cb.frames)
    assert ca.audio.shape == cb.audio.shape
    assert np.abs(ca.audio - cb.audio).max() > 0.05


@pytest.mark.parametrize("pair", ["slide", "drift", "clicks"])
def test_visual_pairs_share_the_sound_but_not_the_frames(pair: str) -> None:
    a, b = pairs()[pair]
    spec = sample_spec(5)
    ca, cb = generate_clip(spec.with_label(a.index)), generate_clip(spec.with_label(b.index))
    np.testing.assert_array_equal(ca.audio, cb.audio)
    assert np.abs(ca.frames.astype(int) - cb.frames.astype(int)).max() > 100


def test_slide_left_is_the_mirror_trajectory_of_slide_right() -> None:
    spec = sample_spec(21)
    left = sample_trajectory(spec.with_label(class_by_name("slide_left").index))
    right = sample_trajectory(spec.with_label(class_by_name("slide_right").index))
    t = np.linspace(0, spec.duration_s, 50)
    ul, vl, _ = left.state(t)
    ur, vr, _ = right.state(t)
    np.testing.assert_allclose(ul, 1 - ur)
    np.testing.assert_allclose(vl, vr)
    # every pass goes one way (the wrap back to the entry side happens while invisible)
    visible = (left.opacity(t[1:]) > 0.5) & (left.opacity(t[:-1]) > 0.5)
    assert np.all(np.diff(ul)[visible] < 0) and np.all(np.diff(ur)[visible] > 0)
    np.testing.assert_array_equal(left.opacity(t), right.opacity(t))
    assert visible.mean() > 0.7


def test_fast_drift_moves_several_times_faster_than_slow_drift() -> None:
    speeds = {}
    for name in ("drift_slow", "drift_fast"):
        per_seed = []
        for seed in range(20):
            traj = sample_trajectory(sample_spec(seed).with_label(class_by_name(name).index))
            t = np.linspace(0, 2.13, 300)
            u, v, _ = traj.state(t)
            step = np.hypot(np.diff(u), np.diff(v)) / np.diff(t)
            seen = (traj.opacity(t[1:]) > 0.5) & (traj.opacity(t[:-1]) > 0.5)
            per_seed.append(np.median(step[seen]))
        speeds[name] = np.array(per_seed)
    assert speeds["drift_fast"].min() > 3.0 * speeds["drift_slow"].max()


@pytest.mark.parametrize("split", ["short", "long"])
def test_class_object_stays_inside_its_stage(split: str) -> None:
    for seed in range(40):
        spec = sample_spec(seed, split)  # type: ignore[arg-type]
        traj = sample_trajectory(spec)
        t = np.linspace(0, spec.event_end_s - spec.event_start_s, 300)
        u, v, _ = traj.state(t)
        r = traj.diameter / 2
        assert u.min() - r >= -1e-6 and u.max() + r <= 1 + 1e-6, (seed, traj.kind)
        assert v.min() - r >= -1e-6 and v.max() + r <= 1 + 1e-6, (seed, traj.kind)
        x, y, w, h = spec.stage
        assert x >= 0 and x + w <= spec.width and y >= 0 and y + h <= spec.height
