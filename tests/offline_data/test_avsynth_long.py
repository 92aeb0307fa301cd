"""Long videos: the manifest's event window and box are where the class event really is."""

from __future__ import annotations

import numpy as np
import pytest

from offline.data.avsynth import SynthClip, generate_clip, sample_spec
from offline.data.avsynth.classes import CLASSES
from offline.data.avsynth.scene import sample_trajectory
from offline.data.avsynth.sound import render_audio


def _cheapest_long_seed() -> int:
    """The cheapest long video among the first seeds (a fast test on a real long spec)."""
    specs = [sample_spec(s, "long") for s in range(60)]
    return min(specs, key=lambda s: s.num_frames * s.width * s.height).seed


@pytest.fixture(scope="module")
def long_clip() -> SynthClip:
    return generate_clip(_cheapest_long_seed(), "long")


def test_long_specs_put_a_short_event_inside_a_long_video() -> None:
    for seed in range(100):
        s = sample_spec(seed, "long")
        assert 30 <= s.duration_s <= 60 and s.width <= 320
        assert 2.0 <= s.event_end_s - s.event_start_s <= 4.0 + 1e-3
        assert s.event_start_s >= 1.0 and s.event_end_s <= s.duration_s - 1.0 + 1e-3
        x, y, w, h = s.stage
        assert w <= 0.6 * min(s.width, s.height)  # a 0.6 x short side glance patch holds it
        assert x >= 0 and x + w <= s.width and y >= 0 and y + h <= s.height
    starts = [sample_spec(seed, "long").event_start_s / sample_spec(seed, "long").duration_s
              for seed in range(100)]  # fmt: skip
    assert min(starts) < 0.2 and max(starts) > 0.7  # the event can be anywhere


def _class_colour_fraction(frames: np.ndarray, label: int) -> np.ndarray:
    """Per frame: fraction of pixels near the class object's (saturated) hue."""
    target = np.array(CLASSES[label].look.colour, dtype=np.float32)
    dist = np.linalg.norm(frames.astype(np.float32) - target, axis=-1)
    return (dist < 60).mean(axis=(1, 2))


@pytest.mark.slow
def test_class_object_is_visible_in_the_event_box_only_during_the_event(
    long_clip: SynthClip,
) -> None:
    clip = long_clip
    m = clip.meta
    x, y, w, h = m["event_box"]
    t = np.arange(len(clip.frames)) / clip.fps
    inside = (t > m["event_start_s"] + 0.2) & (t < m["event_end_s"] - 0.2)
    outside = (t < m["event_start_s"] - 0.1) | (t > m["event_end_s"] + 0.1)
    in_box = _class_colour_fraction(clip.frames[:, y : y + h, x : x + w], clip.label)
    everywhere = _class_colour_fraction(clip.frames, clip.label)
    assert in_box[inside].min() > 0.03  # object is in its box for the whole event
    assert np.percentile(everywhere[outside], 99) < 0.005  # and nowhere outside it
    # the box holds the object: its pixels inside the box are all of its pixels in the frame
    area_ratio = (in_box[inside] * w * h) / (everywhere[inside] * m["width"] * m["height"])
    assert area_ratio.min() > 0.95


def _half_second_rms(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rms per 0.5 s window, window inside the event, window outside it) of a long video."""
    spec = sample_spec(seed, "long")
    mono, _ = render_audio(spec, sample_trajectory(spec))
    hop = spec.sample_rate // 2
    rms = np.sqrt(np.mean(mono[: len(mono) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    t0 = np.arange(len(rms)) / 2
    inside = (t0 >= spec.event_start_s) & (t0 + 0.5 <= spec.event_end_s)
    outside = (t0 + 0.5 < spec.event_start_s) | (t0 > spec.event_end_s)
    return rms, inside, outside


def test_event_is_loud_against_near_silence_but_distractors_compete() -> None:
    louder_distractor = 0
    for seed in range(30):
        rms, inside, outside = _half_second_rms(seed)
        assert np.sqrt(np.mean(rms[inside] ** 2)) > 4 * np.median(rms[outside]), seed
        louder_distractor += bool(rms[outside].max() > rms[inside].min())
    # audio energy alone must not always find the event: loud non-class sounds exist
    assert louder_distractor >= 5


def test_short_clips_fill_the_clip_with_the_event() -> None:
    s = sample_spec(4)
    assert (s.event_start_s, s.event_end_s) == (0.0, s.duration_s)
