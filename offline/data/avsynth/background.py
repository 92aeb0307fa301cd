"""Background clips: content that shows none of the AVSynth classes.

A served model must be able to say "none of my classes is here". These clips teach it the
``background`` outcome. Each clip draws one *kind* from its own seed:

===========  ===============================================================================
kind         what it shows and sounds like
===========  ===============================================================================
clutter      the long split's clutter without the class object: textured background,
             sprinting distractors, camera shake; ambience with loud distracting beeps
quiet        the same clutter with (near) digital silence
dead_leaves  occluding discs of power-law sizes (the dead-leaves model, whose statistics are
             close to natural images), panned and shaken; noise, tones, chords or babble
fractal      1/f colour noise fields cross-fading over time (clouds, foliage, water-like)
shapes       saturated non-class shapes on random paths with unsynchronised sounds
===========  ===============================================================================

Sizes and frame rates range wider than the class clips (portrait, square, 12–50 fps) so the
background outcome does not hinge on a format. Nothing here is ever a class event: no class
look (shape + colour) and no class sound (``sound.class_sound``) is drawn.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from offline.data.avsynth.render import SHAKE_MARGIN, iter_frames, sample_clutter
from offline.data.avsynth.scene import SHORT_SIZES, SynthSpec, sample_spec
from offline.data.avsynth.shapes import draw
from offline.data.avsynth.sound import ambience
from offline.data.avsynth.writer import write_mp4

BACKGROUND = "background"
KINDS = ("clutter", "quiet", "dead_leaves", "fractal", "shapes")
KIND_P = (0.25, 0.1, 0.3, 0.15, 0.2)
EXTRA_SIZES = ((160, 160), (240, 240), (426, 240), (360, 480), (480, 360), (200, 112))
EXTRA_FPS = (Fraction(12), Fraction(50), Fraction(20))
BG_STREAM_SPLIT = 7  # rng key of background draws: unrelated to any class clip's streams
SHAPES = ("ellipse", "bar", "triangle")  # render.DISTRACTOR_SHAPES: never a class look


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, BG_STREAM_SPLIT, stream])


def background_spec(seed: int) -> tuple[SynthSpec, str]:
    """A short-clip spec (format, duration) and the kind of background content for ``seed``."""
    r = _rng(seed, 0)
    spec = sample_spec(seed, "short", label=0)
    kind = str(r.choice(KINDS, p=KIND_P))
    sizes = SHORT_SIZES + EXTRA_SIZES
    w, h = sizes[int(r.integers(len(sizes)))]
    fps = spec.fps if r.uniform() < 0.6 else EXTRA_FPS[int(r.integers(len(EXTRA_FPS)))]
    if kind in ("clutter", "quiet"):
        spec = replace(spec, split="long")  # long-video clutter: more and faster distractors
    return replace(spec, width=w, height=h, fps=fps, stage=(0, 0, min(w, h), min(w, h))), kind


def background_meta(spec: SynthSpec, kind: str, label: int) -> dict[str, Any]:
    """The manifest record of a background clip (the class clips' fields; no event)."""
    return {
        "seed": spec.seed, "split": "short", "label": label, "class_name": BACKGROUND,
        "background_kind": kind, "width": spec.width, "height": spec.height,
        "fps": float(spec.fps), "fps_rational": f"{spec.fps.numerator}/{spec.fps.denominator}",
        "num_frames": spec.num_frames, "sample_rate": spec.sample_rate,
        "channels": spec.channels, "duration_s": spec.duration_s, "event_start_s": 0.0,
        "event_end_s": 0.0, "event_box": [0, 0, spec.width, spec.height],
    }  # fmt: skip


# ---- pictures ------------------------------------------------------------------------------


def _natural_colour(r: np.random.Generator) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(r.uniform(), r.beta(1.5, 2.5), r.beta(2.0, 1.6))
    return np.array(rgb, dtype=np.float32) * 255


def _dead_leaves(r: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Discs with radii ~ r^-3 painted front to back until the canvas is covered."""
    canvas = np.zeros((h, w, 3), np.float32)
    covered = np.zeros((h, w), bool)
    rmin, rmax = 2.0, 0.5 * max(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(4000):
        if covered.all():
            break
        u = r.uniform()
        rad = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5  # inverse CDF of p(r) ~ r^-3
        cx, cy = r.uniform(0, w), r.uniform(0, h)
        x0, x1 = max(int(cx - rad), 0), min(int(cx + rad) + 1, w)
        y0, y1 = max(int(cy - rad), 0), min(int(cy + rad) + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        inside = (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2 <= rad * rad
        new = inside & ~covered[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][new] = _natural_colour(r)
        covered[y0:y1, x0:x1] |= inside
    return canvas


def _fractal(r: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1/f^beta colour noise scaled to 0..255 (beta ~ 1.5-2.5: clouds to foliage)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** -float(r.uniform(1.5, 2.5))
    out = np.empty((h, w, 3), np.float32)
    base = _natural_colour(r)
    for c in range(3):
        spec = amp * np.exp(2j * np.pi * r.uniform(size=amp.shape))
        field = np.fft.irfft2(spec, s=(h, w))
        field = (field - field.mean()) / (field.std() + 1e-9)
        out[..., c] = base[c] + float(r.uniform(25, 70)) * field
    return np.clip(out, 0, 255)


def _pan_path(r: np.random.Generator, n: int, room: int) -> np.ndarray:
    """Per-frame (dx, dy) offsets in [0, room]: a slow pan with a little shake."""
    start = r.uniform(0, room, size=2)
    end = r.uniform(0, room, size=2)
    a = np.linspace(0, 1, n)[:, None]
    path = start + a * (end - start) + r.normal(0, 0.6, size=(n, 2)) * (r.uniform() < 0.5)
    return np.clip(np.round(path), 0, room).astype(np.int64)


def iter_background_frames(spec: SynthSpec, kind: str) -> Iterator[np.ndarray]:
    """The clip's frames (uint8 [H, W, 3]) one at a time."""
    if kind in ("clutter", "quiet"):
        yield from iter_frames(spec, clutter=sample_clutter(spec), draw_object=False)
        return
    r = _rng(spec.seed, 1)
    w, h, n = spec.width, spec.height, spec.num_frames
    room = max(8, round(0.25 * min(w, h)))
    noise_sigma = float(r.uniform(1.0, 5.0))
    fps = float(spec.fps)
    if kind == "shapes":
        bg = _fractal(r, h, w) * 0.5 + 0.5 * _natural_colour(r)
        objs = [
            (str(r.choice(SHAPES)), _natural_colour(r) * np.float32(1.1),
             float(r.uniform(0.1, 0.35)) * min(w, h), float(r.uniform(1.0, 3.0)),
             r.uniform(0, 1, size=2), r.uniform(-0.6, 0.6, size=2), float(r.uniform(-2, 2)))
            for _ in range(int(r.integers(1, 5)))
        ]  # fmt: skip
        for i in range(n):
            t = i / fps
            canvas = bg.copy()
            for shape, colour, dia, aspect, p0, vel, om in objs:
                u, v = np.mod(p0 + vel * t, 1.0)
                draw(canvas, shape, u * w, v * h, dia, om * t, np.clip(colour, 0, 255),
                     aspect=aspect)  # fmt: skip
            canvas += r.normal(0, noise_sigma, size=canvas.shape).astype(np.float32)
            yield np.clip(canvas, 0, 255).astype(np.uint8)
        return
    big = (_dead_leaves if kind == "dead_leaves" else _fractal)(r, h + room, w + room)
    other = _fractal(r, h + room, w + room) if kind == "fractal" else big
    path = _pan_path(r, n, room)
    for i in range(n):
        dx, dy = (int(v) for v in path[i])
        a = i / max(n - 1, 1)
        frame = big if kind == "dead_leaves" else (1 - a) * big + a * other
        canvas = frame[dy : dy + h, dx : dx + w].astype(np.float32)
        canvas += r.normal(0, noise_sigma, size=canvas.shape).astype(np.float32)
        yield np.clip(canvas, 0, 255).astype(np.uint8)


# ---- sounds --------------------------------------------------------------------------------


def _babble(r: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Speech-like: a harmonic voice with vibrato, syllable-rate envelope, moving formants."""
    t = np.arange(n) / sr
    f0 = float(r.uniform(90, 260)) * (1 + 0.05 * np.sin(2 * np.pi * float(r.uniform(3, 6)) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formant = float(r.uniform(400, 1200)) * (1 + 0.4 * np.sin(2 * np.pi * 1.3 * t))
    out = np.zeros(n)
    for k in range(1, 16):
        weight = np.exp(-(((k * f0) - formant) ** 2) / (2 * 300.0**2)) + 0.05 / k
        out += weight * np.sin(k * phase)
    syll = np.clip(np.sin(2 * np.pi * float(r.uniform(2.5, 5.5)) * t + r.uniform(0, 6)), 0, 1)
    return out * syll


def _music(r: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Notes and chords from a random scale (harmonic tones with soft attacks)."""
    out = np.zeros(n)
    step = int(sr * float(r.uniform(0.15, 0.6)))
    root = float(r.uniform(110, 330))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    for start in range(0, n, step):
        m = min(step * 2, n - start)
        tt = np.arange(m) / sr
        env = (1 - np.exp(-tt * 60)) * np.exp(-tt * float(r.uniform(1.5, 6)))
        for semis in r.choice(scale, size=int(r.integers(1, 4))):
            f = root * 2 ** (semis / 12)
            out[start : start + m] += env * sum(
                np.sin(2 * np.pi * f * k * tt) / k for k in (1, 2, 3)
            )
    return out


def _noise(r: np.random.Generator, n: int) -> np.ndarray:
    """Pink-to-brown noise (wind, traffic, water)."""
    spec = np.fft.rfft(r.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 2 else 1.0
    return np.fft.irfft(spec * f ** -float(r.uniform(0.5, 1.0)), n)


def background_audio(spec: SynthSpec, kind: str) -> np.ndarray:
    """float32 [C, N]: the kind's sound bed, peak-normalised to a random level."""
    r = _rng(spec.seed, 2)
    n, sr = spec.num_samples, spec.sample_rate
    if kind == "quiet" or r.uniform() < 0.08:
        level = 0.0 if r.uniform() < 0.5 else float(10 ** (r.uniform(-70, -50) / 20))
        mono = r.standard_normal(n) * level
    else:
        amb, _, _ = ambience(spec)
        choice = "ambience" if kind == "clutter" else str(r.choice(["noise", "music", "babble"]))
        bed = {
            "ambience": lambda: np.zeros(n),
            "noise": lambda: _noise(r, n),
            "music": lambda: _music(r, n, sr),
            "babble": lambda: _babble(r, n, sr),
        }[choice]()
        bed = bed / max(float(np.abs(bed).max()), 1e-9)
        mono = amb / max(float(np.abs(amb).max()), 1e-9) * float(r.uniform(0.1, 1.0)) + bed
        mono = mono / max(float(np.abs(mono).max()), 1e-9) * float(r.uniform(0.1, 0.6))
    mono = mono.astype(np.float32)
    return mono[None, :] if spec.channels == 1 else np.stack([mono, mono])


def write_background(path: str | Path, seed: int, label: int) -> dict[str, Any]:
    """Render and encode background clip ``seed`` to ``path``; returns its manifest record."""
    spec, kind = background_spec(seed)
    write_mp4(
        path,
        iter_background_frames(spec, kind),
        background_audio(spec, kind),
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        sample_rate=spec.sample_rate,
    )
    return background_meta(spec, kind, label)


__all__ = ["BACKGROUND", "KINDS", "SHAKE_MARGIN", "background_spec", "write_background"]
