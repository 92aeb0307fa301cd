"""Video frames of an AVSynth clip: textured background, distractors, the class object, camera.

Layers, back to front: a textured background (smooth noise, stripes, gradient), distractor
objects that are *not* any class's object (desaturated ellipses, bars and triangles drifting,
sometimes sprinting across the frame in long videos), the class object inside its stage box
(only during the event window), then camera effects (shake, brightness flicker, sensor noise).
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from offline.data.avsynth.classes import CLASSES
from offline.data.avsynth.scene import (
    CLUTTER,
    SPLITS,
    SynthSpec,
    Trajectory,
    rng,
    sample_trajectory,
)
from offline.data.avsynth.shapes import draw

SHAKE_MARGIN = 4  # px of background kept around the frame so the camera can shake
FADE_S = 0.15  # class object fade in/out at the event boundaries (long videos)
DISTRACTOR_SHAPES = ("ellipse", "bar", "triangle")


@dataclass(frozen=True)
class Distractor:
    shape: str
    colour: np.ndarray  # float32 RGB
    diameter: float  # px
    aspect: float
    start: tuple[float, float]  # px
    velocity: tuple[float, float]  # px / s
    angle0: float
    omega: float
    sprints: tuple[tuple[float, float, float, float], ...]  # (t0, duration, dx, dy) px

    def position(self, t: float, width: int, height: int) -> tuple[float, float]:
        x = self.start[0] + self.velocity[0] * t
        y = self.start[1] + self.velocity[1] * t
        for t0, dur, dx, dy in self.sprints:
            a = float(np.clip((t - t0) / dur, 0.0, 1.0))
            a = a * a * (3 - 2 * a)  # smoothstep: a fast but continuous move
            x += a * dx
            y += a * dy
        pad = self.diameter
        # wrap around the frame (with room to leave it completely before re-entering)
        x = (x + pad) % (width + 2 * pad) - pad
        y = (y + pad) % (height + 2 * pad) - pad
        return x, y


@dataclass(frozen=True)
class Clutter:
    background: np.ndarray  # float32 [H + 2M, W + 2M, 3]
    distractors: tuple[Distractor, ...]
    shake: np.ndarray  # int [F, 2] per-frame (dx, dy) in [-M, M]
    gain: np.ndarray  # float32 [F] brightness flicker
    noise: np.ndarray  # float32 [K, H, W, 3] sensor-noise bank
    noise_index: np.ndarray  # int [F]


def _muted_colour(r: np.random.Generator, max_sat: float = 0.3) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(r.uniform(), r.uniform(0.0, max_sat), r.uniform(0.3, 0.8))
    return np.array(rgb, dtype=np.float32) * 255


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of a small [gh, gw] grid to [h, w] (smooth texture)."""
    gh, gw = grid.shape
    ys = np.linspace(0, gh - 1, h, dtype=np.float32)
    xs = np.linspace(0, gw - 1, w, dtype=np.float32)
    y0 = np.minimum(ys.astype(int), gh - 2)
    x0 = np.minimum(xs.astype(int), gw - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def sample_clutter(spec: SynthSpec) -> Clutter:
    """Draw background, distractors and camera effects from the CLUTTER stream."""
    cfg = SPLITS[spec.split]
    r = rng(spec.seed, spec.split, CLUTTER)
    w, h, m = spec.width, spec.height, SHAKE_MARGIN
    bh, bw = h + 2 * m, w + 2 * m
    short = min(w, h)
    base = _muted_colour(r, 0.35)
    bg = np.broadcast_to(base, (bh, bw, 3)).astype(np.float32)
    for c in range(3):  # smooth per-channel blotches
        grid = r.normal(0, 1, size=(int(r.integers(3, 8)), int(r.integers(3, 8))))
        bg[..., c] += float(r.uniform(10, 35)) * _upsample(grid.astype(np.float32), bh, bw)
    theta = r.uniform(0, np.pi)
    wavelength = r.uniform(6, 30)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    stripes = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / wavelength))
    bg += (float(r.uniform(0, 16)) * stripes)[..., None]
    bg += (float(r.uniform(-20, 20)) * (yy / bh - 0.5))[..., None]  # light gradient
    bg = np.clip(bg, 0, 255)

    duration = spec.duration_s
    distractors = []
    for _ in range(int(r.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
        n_sprints = int(r.poisson(cfg.sprint_rate_hz * duration))
        sprints = []
        for _ in range(n_sprints):
            t0 = float(r.uniform(0, duration))
            length = float(r.uniform(0.6, 2.0)) * short
            ang = float(r.uniform(0, 2 * np.pi))
            sprints.append(
                (t0, float(r.uniform(0.8, 2.0)), length * np.cos(ang), length * np.sin(ang))
            )
        speed = float(r.uniform(0.02, 0.15)) * short
        ang = float(r.uniform(0, 2 * np.pi))
        distractors.append(
            Distractor(
                shape=str(r.choice(DISTRACTOR_SHAPES)),
                colour=_muted_colour(r, 0.25),
                diameter=float(r.uniform(0.08, 0.2)) * short,
                aspect=float(r.uniform(1.8, 3.5)),
                start=(float(r.uniform(0, w)), float(r.uniform(0, h))),
                velocity=(speed * np.cos(ang), speed * np.sin(ang)),
                angle0=float(r.uniform(0, np.pi)),
                omega=float(r.uniform(-1.0, 1.0)),
                sprints=tuple(sprints),
            )
        )

    n = spec.num_frames
    t = np.arange(n) / float(spec.fps)
    amp = float(r.choice([0.0, r.uniform(0.5, 2.5)]))
    fx, fy = r.uniform(0.5, 3.0, size=2)
    px, py = r.uniform(0, 2 * np.pi, size=2)
    jitter = r.normal(0, 0.4, size=(n, 2)) * (amp > 0)
    shake = np.stack(
        [amp * np.sin(2 * np.pi * fx * t + px), amp * np.sin(2 * np.pi * fy * t + py)], axis=1
    )
    shake = np.clip(np.round(shake + jitter), -m, m).astype(np.int64)
    flicker = float(r.uniform(0.0, 0.06))
    gain = 1 + flicker * np.sin(2 * np.pi * r.uniform(0.5, 4.0) * t + r.uniform(0, 6.3))
    gain = (gain + r.normal(0, 0.01, size=n)).astype(np.float32)
    sigma = float(r.uniform(1.5, 6.0))
    noise = (r.standard_normal(size=(4, h, w, 3), dtype=np.float32) * sigma).astype(np.float32)
    return Clutter(
        background=bg,
        distractors=tuple(distractors),
        shake=shake,
        gain=gain,
        noise=noise,
        noise_index=r.integers(0, 4, size=n),
    )


def object_opacity(spec: SynthSpec, t: float) -> float:
    """1 inside the event window, fading over ``FADE_S`` at its ends (short clips: always 1)."""
    if spec.split == "short":
        return 1.0
    a = min((t - spec.event_start_s) / FADE_S, (spec.event_end_s - t) / FADE_S)
    return float(np.clip(a, 0.0, 1.0))


def iter_frames(
    spec: SynthSpec,
    traj: Trajectory | None = None,
    clutter: Clutter | None = None,
    draw_object: bool = True,
) -> Iterator[np.ndarray]:
    """Yield the clip's frames one at a time (uint8 [H, W, 3] RGB): long videos stream.

    ``draw_object=False`` renders the clutter alone (background clips).
    """
    traj = traj or sample_trajectory(spec)
    clutter = clutter or sample_clutter(spec)
    cls = CLASSES[spec.label]
    colour = np.clip(np.array(cls.look.colour) + np.array(traj.colour_jitter), 0, 255)
    colour = colour.astype(np.float32)
    w, h, m = spec.width, spec.height, SHAKE_MARGIN
    sx, sy, side, _ = spec.stage
    fps = float(spec.fps)
    for i in range(spec.num_frames):
        t = i / fps
        dx, dy = (int(v) for v in clutter.shake[i])
        canvas = clutter.background[m + dy : m + dy + h, m + dx : m + dx + w].copy()
        for d in clutter.distractors:
            x, y = d.position(t, w, h)
            draw(canvas, d.shape, x + dx, y + dy, d.diameter, d.angle0 + d.omega * t,
                 d.colour, aspect=d.aspect)  # fmt: skip
        local = t - spec.event_start_s
        opacity = object_opacity(spec, t) * float(traj.opacity(local)) if draw_object else 0.0
        if opacity > 0:
            u, v, ang = traj.state(local)
            cx = sx + float(u) * side + dx
            cy = sy + float(v) * side + dy
            draw(canvas, cls.look.shape, cx, cy, traj.diameter * side, float(ang), colour,
                 opacity)  # fmt: skip
        canvas *= clutter.gain[i]
        canvas += clutter.noise[clutter.noise_index[i]]
        np.clip(canvas, 0, 255, out=canvas)
        yield canvas.astype(np.uint8)


def render_frames(spec: SynthSpec) -> np.ndarray:
    """All frames as uint8 [T, H, W, 3] (fine for short clips; long ones are ~100-250 MB)."""
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
    for i, f in enumerate(iter_frames(spec)):
        frames[i] = f
    return frames
