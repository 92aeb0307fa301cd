"""Sampling a fully specified AVSynth clip from a seed: format, timing, stage and trajectories.

Every random choice is drawn from one of several *independent* streams keyed by
``(seed, split, stream)``, so that a factor a pair of classes shares is drawn identically:

=========  =========================================================================
stream     what it decides
=========  =========================================================================
FORMAT     resolution, fps, sample rate, channels, duration, event window, stage box
MOTION     the class object's trajectory and colour jitter (depends on ``motion`` only)
CLUTTER    background texture, distractor objects, camera noise (class independent)
SOUND      the class sound events (depends on ``sound`` + motion event times only)
AMBIENCE   noise floor, hum, distracting sounds, stereo pan, gain (class independent)
=========  =========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

import numpy as np

from offline.data.avsynth.classes import CLASSES, NUM_CLASSES, Motion

Split = Literal["short", "long", "window"]
SPLIT_IDS: dict[str, int] = {"short": 0, "long": 1, "window": 2}
FORMAT, MOTION, CLUTTER, SOUND, AMBIENCE = range(5)
SLIDE_FADE = 0.08  # fraction of a pass spent fading in (and out)
PASS_MOTIONS = ("slide_left", "slide_right", "drift_slow", "drift_fast")

# (width, height); the long split stays at <= 320 px wide to keep files and time down.
SHORT_SIZES = (
    (160, 120), (192, 144), (240, 180), (256, 144), (320, 180), (320, 240), (384, 216),
    (480, 270), (120, 160), (144, 256), (180, 320), (270, 480),
)  # fmt: skip
LONG_SIZES = ((320, 180), (256, 144), (320, 240), (240, 180), (192, 144), (180, 320), (144, 256))
FRAME_RATES = (Fraction(24), Fraction(25), Fraction(30), Fraction(30000, 1001), Fraction(15))
SAMPLE_RATES = (16000, 22050, 44100, 48000)


@dataclass(frozen=True)
class SplitConfig:
    """Geometry and timing of one split (all sizes relative to the frame's short side S)."""

    sizes: tuple[tuple[int, int], ...]
    duration_s: tuple[float, float]
    event_s: tuple[float, float] | None  # None: the event fills the clip
    stage_frac: float  # side of the square stage (where the class object lives) / S
    stage_centred: bool  # short clips keep the stage near the centre; long ones anywhere
    object_frac: tuple[float, float]  # object diameter / stage side
    distractors: tuple[int, int]  # number of visual distractor objects
    sprint_rate_hz: float  # fast distractor motions per second (long videos)
    distract_sound_rate_hz: tuple[float, float]
    distract_sound_db: tuple[float, float]  # relative to the class sound's peak


# Short clips last >= 2.4 s so that a 32x2 @ 30 fps window (2.13 s) always fits.
SHORT = SplitConfig(
    sizes=SHORT_SIZES,
    duration_s=(2.4, 4.0),
    event_s=None,
    stage_frac=0.6,
    stage_centred=True,
    object_frac=(0.36, 0.44),
    distractors=(2, 5),
    sprint_rate_hz=0.0,
    distract_sound_rate_hz=(0.3, 1.0),
    distract_sound_db=(-24.0, -14.0),
)
LONG = SplitConfig(
    sizes=LONG_SIZES,
    duration_s=(30.0, 60.0),
    event_s=(2.0, 4.0),
    stage_frac=0.5,
    stage_centred=False,
    object_frac=(0.36, 0.44),
    distractors=(3, 6),
    sprint_rate_hz=0.08,
    distract_sound_rate_hz=(0.08, 0.2),
    distract_sound_db=(-8.0, 0.0),
)
# A short clip as the glance shows a long video's event to the heavy model: the event covers
# 60-100% of the clip, the stage is where a 0.8 x short-side patch around a 0.5 x stage puts
# it (0.625 of the clip's short side, anywhere inside the centre square), with the long split's
# sprinting distractors and loud distracting sounds.
WINDOW = SplitConfig(
    sizes=SHORT_SIZES,
    duration_s=(2.4, 4.0),
    event_s=(0.6, 1.0),  # fraction of the clip (see sample_spec), not seconds
    stage_frac=0.625,
    stage_centred=False,
    object_frac=(0.36, 0.44),
    distractors=(3, 6),
    sprint_rate_hz=0.3,
    distract_sound_rate_hz=(0.3, 1.0),
    distract_sound_db=(-8.0, 0.0),
)
SPLITS: dict[str, SplitConfig] = {"short": SHORT, "long": LONG, "window": WINDOW}


@dataclass(frozen=True)
class SynthSpec:
    """Everything needed to render one clip, apart from the per-stream random draws."""

    seed: int
    split: Split
    label: int
    width: int
    height: int
    fps: Fraction
    sample_rate: int
    channels: int
    duration_s: float
    event_start_s: float
    event_end_s: float
    stage: tuple[int, int, int, int]  # x, y, w, h: the class object stays inside this box

    @property
    def num_frames(self) -> int:
        return round(self.duration_s * float(self.fps))

    @property
    def num_samples(self) -> int:
        return round(self.duration_s * self.sample_rate)

    @property
    def class_name(self) -> str:
        return CLASSES[self.label].name

    def with_label(self, label: int) -> SynthSpec:
        return replace(self, label=label)


def rng(seed: int, split: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], stream])


def label_of_seed(seed: int) -> int:
    """Classes are balanced over consecutive seeds."""
    return seed % NUM_CLASSES


def sample_spec(seed: int, split: Split = "short", label: int | None = None) -> SynthSpec:
    """The spec of clip ``seed``; ``label`` overrides the class without changing anything else."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    cfg = SPLITS[split]
    r = rng(seed, split, FORMAT)
    width, height = cfg.sizes[int(r.integers(len(cfg.sizes)))]
    fps = FRAME_RATES[int(r.integers(len(FRAME_RATES)))]
    sample_rate = SAMPLE_RATES[int(r.integers(len(SAMPLE_RATES)))]
    channels = int(r.integers(1, 3))
    duration = round(float(r.uniform(*cfg.duration_s)), 3)
    if cfg.event_s is None:
        t0, t1 = 0.0, duration
    elif split == "window":
        length = float(r.uniform(*cfg.event_s)) * duration
        t0 = float(r.uniform(0.0, duration - length))
        t0, t1 = round(t0, 3), round(min(duration, t0 + length), 3)
    else:
        length = float(r.uniform(*cfg.event_s))
        t0 = float(r.uniform(1.0, duration - length - 1.0))
        t0, t1 = round(t0, 3), round(t0 + length, 3)
    short = min(width, height)
    side = round(cfg.stage_frac * short)
    if cfg.stage_centred:
        jitter = 0.08 * short
        cx = width / 2 + r.uniform(-jitter, jitter)
        cy = height / 2 + r.uniform(-jitter, jitter)
        x = int(np.clip(round(cx - side / 2), 0, width - side))
        y = int(np.clip(round(cy - side / 2), 0, height - side))
    elif split == "window":  # inside the centre square (what a centre crop keeps)
        x0, y0 = (width - short) // 2, (height - short) // 2
        x = x0 + int(r.integers(0, short - side + 1))
        y = y0 + int(r.integers(0, short - side + 1))
    else:
        x = int(r.integers(0, width - side + 1))
        y = int(r.integers(0, height - side + 1))
    return SynthSpec(
        seed=seed,
        split=split,
        label=label_of_seed(seed) if label is None else int(label),
        width=width,
        height=height,
        fps=fps,
        sample_rate=sample_rate,
        channels=channels,
        duration_s=duration,
        event_start_s=t0,
        event_end_s=t1,
        stage=(x, y, side, side),
    )


@dataclass(frozen=True)
class Trajectory:
    """The class object's motion in stage units (0..1 on both axes), event-local time."""

    kind: Motion
    diameter: float  # object size in stage units
    params: tuple[float, ...]
    event_times: tuple[float, ...]  # bounce impacts (sound events are synchronised to them)
    colour_jitter: tuple[int, int, int]

    def _pass_length(self) -> float:
        """Length of one pass (stage units): across the stage, or its chord along a drift."""
        if self.kind in ("drift_slow", "drift_fast"):
            theta = self.params[2]
            return (1 - self.diameter) / max(abs(math.cos(theta)), abs(math.sin(theta)))
        return 1 - self.diameter

    def _pass_phase(self, t: np.ndarray) -> np.ndarray:
        phase0, speed = self.params[0], self.params[1]
        return np.mod(phase0 + t * speed / self._pass_length(), 1.0)

    def opacity(self, t: np.ndarray | float) -> np.ndarray:
        """Visibility of the object (passes fade in and out; other motions are always 1)."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind not in PASS_MOTIONS:
            return np.ones_like(t)
        w = self._pass_phase(t)
        return np.clip(np.minimum(w, 1 - w) / SLIDE_FADE, 0.0, 1.0)

    def state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, angle_rad) of the object centre at event-local times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        p = self.params
        m = self.diameter / 2
        if self.kind == "bounce":
            period, phase, height, u0, drift = p
            w = np.mod(t / period + phase, 1.0)
            v = (1 - m) - height * 4 * w * (1 - w)
            u = _reflect(u0 + drift * t, m, 1 - m)
            return u, v, np.zeros_like(t)
        if self.kind == "spin":
            omega, theta0, u0, v0, a, f, ph = p
            u = u0 + a * np.sin(2 * np.pi * f * t + ph)
            v = v0 + a * np.cos(2 * np.pi * f * 0.7 * t + ph)
            return u, v, theta0 + omega * t
        if self.kind in ("slide_left", "slide_right"):
            _, _, v0, bob_f, bob_ph = p
            # conveyor: repeated passes across the stage (rightwards; mirrored for the left
            # class), each fading in at the entry side and out at the exit side
            u = m + (1 - 2 * m) * self._pass_phase(t)
            if self.kind == "slide_left":
                u = 1.0 - u
            v = v0 + 0.03 * np.sin(2 * np.pi * bob_f * t + bob_ph)
            return u, v, np.zeros_like(t)
        if self.kind in ("drift_slow", "drift_fast"):
            _, _, theta, omega = p
            # passes through the stage centre along a random direction, re-entering each time
            d = (self._pass_phase(t) - 0.5) * self._pass_length()
            return 0.5 + d * math.cos(theta), 0.5 + d * math.sin(theta), omega * t
        # wander
        a1, f1, p1, a2, f2, p2, b1, g1, q1, b2, g2, q2, om = p
        u = 0.5 + a1 * np.sin(2 * np.pi * f1 * t + p1) + a2 * np.sin(2 * np.pi * f2 * t + p2)
        v = 0.5 + b1 * np.sin(2 * np.pi * g1 * t + q1) + b2 * np.sin(2 * np.pi * g2 * t + q2)
        return u, v, om * t


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold ``x`` into [lo, hi] as a ball bouncing between two walls would."""
    span = hi - lo
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def sample_trajectory(spec: SynthSpec) -> Trajectory:
    """Draw the class object's trajectory from the MOTION stream.

    Classes with the same motion family consume the same draws, and the two classes of a
    motion-only pair map the same draws to mirrored / rescaled trajectories.
    """
    cls = CLASSES[spec.label]
    cfg = SPLITS[spec.split]
    r = rng(spec.seed, spec.split, MOTION)
    d = float(r.uniform(*cfg.object_frac))
    m = d / 2
    jitter = tuple(int(x) for x in r.integers(-12, 13, size=3))
    dur = spec.event_end_s - spec.event_start_s
    kind = cls.motion
    events: tuple[float, ...] = ()
    if kind == "bounce":
        period = float(r.uniform(0.55, 0.9))
        phase = float(r.uniform(0, 1))
        height = float(r.uniform(0.5, 0.95)) * (1 - d)
        u0 = float(r.uniform(m, 1 - m))
        drift = float(r.uniform(-0.08, 0.08))
        params: tuple[float, ...] = (period, phase, height, u0, drift)
        # impacts: where the bounce phase wraps, t = (k - phase) * period
        k = np.arange(math.ceil(phase), math.floor(dur / period + phase) + 1)
        events = tuple(float(x) for x in (k - phase) * period if 0 <= x <= dur)
    elif kind == "spin":
        omega = math.radians(float(r.uniform(90, 200))) * float(r.choice([-1.0, 1.0]))
        a = float(r.uniform(0.0, 0.12))
        params = (
            omega,
            float(r.uniform(0, np.pi)),
            float(r.uniform(m + a, 1 - m - a)),
            float(r.uniform(m + a, 1 - m - a)),
            a,
            float(r.uniform(0.1, 0.4)),
            float(r.uniform(0, 2 * np.pi)),
        )
    elif kind in ("slide_left", "slide_right"):
        params = (
            float(r.uniform(0, 1)),  # where in its pass the object starts
            float(r.uniform(0.3, 0.45)),  # stage widths per second, whatever the duration
            float(r.uniform(m + 0.03, 1 - m - 0.03)),
            float(r.uniform(0.3, 1.0)),
            float(r.uniform(0, 2 * np.pi)),
        )
    elif kind in ("drift_slow", "drift_fast"):
        u = float(r.uniform(0, 1))
        lo, hi = (0.08, 0.14) if kind == "drift_slow" else (0.45, 0.7)  # stage widths / s
        params = (
            float(r.uniform(0, 1)),
            lo + u * (hi - lo),
            float(r.uniform(0, 2 * np.pi)),
            float(r.uniform(-0.5, 0.5)),
        )
    else:  # wander
        room = 0.5 - m
        a1, a2 = (float(x) for x in r.uniform(0.25, 0.5, size=2) * room)
        b1, b2 = (float(x) for x in r.uniform(0.25, 0.5, size=2) * room)
        f = r.uniform(0.15, 0.5, size=4)
        ph = r.uniform(0, 2 * np.pi, size=4)
        om = float(r.uniform(-0.6, 0.6))
        params = (a1, f[0], ph[0], a2, f[1], ph[1], b1, f[2], ph[2], b2, f[3], ph[3], om)
        params = tuple(float(x) for x in params)
    return Trajectory(kind, d, params, events, (jitter[0], jitter[1], jitter[2]))
