"""One AVSynth clip in memory (``generate_clip``) or on disk (``write_clip``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from offline.data.avsynth.render import iter_frames, render_frames, sample_clutter
from offline.data.avsynth.scene import Split, SynthSpec, sample_spec, sample_trajectory
from offline.data.avsynth.sound import render_audio
from offline.data.avsynth.writer import write_mp4


class SynthClip(NamedTuple):
    """frames uint8 [T, H, W, 3] RGB; audio float32 [N] mono (the mean of the written channels)."""

    frames: np.ndarray
    audio: np.ndarray
    sample_rate: int
    fps: float
    label: int
    meta: dict[str, Any]


def resolve(spec_or_seed: SynthSpec | int, split: Split = "short") -> SynthSpec:
    if isinstance(spec_or_seed, SynthSpec):
        return spec_or_seed
    return sample_spec(int(spec_or_seed), split)


def clip_meta(spec: SynthSpec) -> dict[str, Any]:
    """The manifest record of a clip (everything but the file name)."""
    return {
        "seed": spec.seed,
        "split": spec.split,
        "label": spec.label,
        "class_name": spec.class_name,
        "width": spec.width,
        "height": spec.height,
        "fps": float(spec.fps),
        "fps_rational": f"{spec.fps.numerator}/{spec.fps.denominator}",
        "num_frames": spec.num_frames,
        "sample_rate": spec.sample_rate,
        "channels": spec.channels,
        "duration_s": spec.duration_s,
        "event_start_s": spec.event_start_s,
        "event_end_s": spec.event_end_s,
        "event_box": list(spec.stage),
    }


def generate_clip(spec_or_seed: SynthSpec | int, split: Split = "short") -> SynthClip:
    """Render a clip without encoding it (for tests and to compare decoded against raw)."""
    spec = resolve(spec_or_seed, split)
    traj = sample_trajectory(spec)
    mono, _ = render_audio(spec, traj)
    frames = render_frames(spec)
    return SynthClip(frames, mono, spec.sample_rate, float(spec.fps), spec.label, clip_meta(spec))


def write_clip(
    path: str | Path, spec_or_seed: SynthSpec | int, split: Split = "short"
) -> dict[str, Any]:
    """Render and encode a clip to an H.264 + AAC MP4 at ``path``; returns its manifest record."""
    spec = resolve(spec_or_seed, split)
    traj = sample_trajectory(spec)
    _, channels = render_audio(spec, traj)
    frames = iter_frames(spec, traj, sample_clutter(spec))
    write_mp4(
        path,
        frames,
        channels,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        sample_rate=spec.sample_rate,
    )
    return clip_meta(spec)
