"""Anti-aliased shape drawing with signed distance functions (numpy, float32 canvases).

A shape is drawn into the smallest patch of the canvas that can contain it, so the cost of a
frame is the background copy plus a few small patches.
"""

from __future__ import annotations

import math

import numpy as np

SQRT3 = math.sqrt(3.0)


def _box(x: np.ndarray, y: np.ndarray, bx: float, by: float) -> np.ndarray:
    qx = np.abs(x) - bx
    qy = np.abs(y) - by
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float, aspect: float = 1.0) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a shape of radius ``r`` at the origin."""
    if shape == "circle":
        return np.hypot(x, y) - r
    if shape == "ring":
        return np.abs(np.hypot(x, y) - 0.76 * r) - 0.24 * r
    if shape == "square":
        return _box(x, y, 0.84 * r, 0.84 * r)
    if shape == "cross":
        return np.minimum(_box(x, y, r, 0.3 * r), _box(x, y, 0.3 * r, r))
    if shape == "diamond":
        return (np.abs(x) + np.abs(y) / 1.25 - r) / math.sqrt(1 + 1 / 1.5625)
    if shape == "hexagon":
        ax, ay = np.abs(x), np.abs(y)
        return np.maximum(ax * 0.5 + ay * (SQRT3 / 2), ax) - 0.92 * r
    if shape == "triangle":  # distractor only
        k = SQRT3
        ax = np.abs(x)
        return np.maximum(ax * k / 2 + y / 2, -y) - 0.45 * r
    if shape == "ellipse":  # distractor only: elongated, never confusable with the ball
        a, b = r, r / aspect
        return (np.hypot(x / a, y / b) - 1.0) * b
    if shape == "bar":  # distractor only
        return _box(x, y, r, r / aspect)
    raise ValueError(f"unknown shape {shape!r}")


def draw(
    canvas: np.ndarray,
    shape: str,
    cx: float,
    cy: float,
    diameter: float,
    angle: float,
    colour: np.ndarray,
    opacity: float = 1.0,
    aspect: float = 1.0,
) -> None:
    """Composite a flat-coloured shape onto ``canvas`` (float32 [H, W, 3]) in place."""
    if opacity <= 0:
        return
    h, w = canvas.shape[:2]
    r = diameter / 2
    reach = r * 1.45 + 2
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, w)
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    c, s = math.cos(angle), math.sin(angle)
    xr = c * xs + s * ys
    yr = -s * xs + c * ys
    alpha = np.clip(0.5 - sdf(shape, xr, yr, r, aspect), 0.0, 1.0).astype(np.float32)
    if opacity < 1:
        alpha *= opacity
    patch = canvas[y0:y1, x0:x1]
    patch += alpha[..., None] * (colour[None, None, :] - patch)
