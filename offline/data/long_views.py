"""Training items cut from long videos the way serving shows them to the heavy model.

Serving never gives the heavy model a whole long video: it sees ~2.1 s windows through a glance
patch (a square of rho x short side, rho = 0.8) or through a dense view (the short-side
square). A model trained only on short clips met those windows for the first time in
production, and read real long-video windows worse than synthetic look-alikes (issue 11). So
each long video of a generated set gives (``CacheConfig(region="views")``):

* per side in ``view_sides``: the event, ``view_margin_s`` either side, seen through a square
  of that side placed at random where it holds the whole event box; labelled with the class.
  A model window sampled inside it is >= 60% event for the shortest events (2 s);
* with ``partial_views``, also the views that hold only part of the event box, as serving
  meets them: each of the three dense crops (short-side squares, left / centre / right) and
  one glance-sized patch at random, wherever they hold at least half of the box;
* ``edge_views`` windows that catch only the start or the end of the event (alternately), as a
  dense clip often does on a long video: the event fills ``EDGE_FILL`` of the window (+-
  ``EDGE_SLACK_S`` of sampling play), seen through a square holding the whole box; labelled
  with the class, so that a view showing part of an event is not read as background;
* ``background_views`` stretches (a model window + 1 s) that do not touch the event, through a
  square of a random listed side at a random place; labelled ``background``: clutter,
  distractors and loud non-class sounds, exactly as the long videos have them.

``edge_items`` gives the edge windows alone (``CacheConfig(region="edges")``): a cache that can
join training late (``avserve train avslowfast --edge-from-epoch``), once the model reads
direction from whole events (docs/avsynth.md: edge windows from the first epoch make the
``slide_left`` / ``slide_right`` pair separate late and unstably).

Placement is drawn from the video's own seed, so a set always yields the same items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from offline.data.avsynth.generate import BACKGROUND_LABEL

if TYPE_CHECKING:
    from offline.data.cache import CacheConfig

MODEL_WINDOW_S = 32 * 2 / 30  # the heavy model's clip: 32 frames, stride 2 at 30 fps
BACKGROUND_SLACK_S = 1.0  # a background stretch is this much longer than a model window
EDGE_FILL = (0.25, 0.55)  # share of an edge view's window the event covers (drawn uniformly)
EDGE_SLACK_S = 0.2  # an edge stretch is this much longer than a window (fill moves ~+-0.1)

Item = tuple[dict[str, Any], tuple[float, float], tuple[int, int, int, int], int]


def _place(lo: int, hi: int, rng: np.random.Generator) -> int:
    """A start in [lo, hi]; when the range is empty (box wider than the square), its middle."""
    return int(rng.integers(lo, hi + 1)) if hi >= lo else (lo + hi) // 2


def _holding(
    box: tuple[int, int, int, int], side: int, width: int, height: int, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """A ``side`` square inside the frame that holds ``box`` (x, y, w, h), placed at random."""
    x, y, w, h = box
    x0 = _place(max(0, x + w - side), min(x, width - side), rng)
    y0 = _place(max(0, y + h - side), min(y, height - side), rng)
    return (min(max(x0, 0), width - side), min(max(y0, 0), height - side), side, side)


def _free_start(
    duration: float, event: tuple[float, float], length: float, rng: np.random.Generator
) -> float | None:
    """A start of a ``length`` stretch that does not overlap ``event``, or None if none fits."""
    gaps = [(0.0, event[0] - length), (event[1], duration - length)]
    room = np.array([max(0.0, b - a) for a, b in gaps])
    if room.sum() <= 0:
        return None
    k = int(rng.choice(len(gaps), p=room / room.sum()))
    return float(rng.uniform(gaps[k][0], gaps[k][0] + room[k]))


def _held(square: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> float:
    """The share of ``box`` inside ``square``."""
    x, y, s, _ = square
    bx, by, bw, bh = box
    w = max(0, min(x + s, bx + bw) - max(x, bx))
    h = max(0, min(y + s, by + bh) - max(y, by))
    return w * h / max(1, bw * bh)


def _partial_squares(
    box: tuple[int, int, int, int], sides: list[int], width: int, height: int,
    rng: np.random.Generator,
) -> list[tuple[int, int, int, int]]:  # fmt: skip
    """Dense crops, and one random glance-sized patch, that hold >= half of ``box``."""
    short = min(width, height)
    free = max(width, height) - short
    along = [0, (free + 1) // 2, free]  # the three dense crops along the long side
    dense = [(a, 0, short, short) if width >= height else (0, a, short, short) for a in along]
    out = list(dict.fromkeys(sq for sq in dense if _held(sq, box) >= 0.5))
    side = sides[0]
    for _ in range(20):  # a random patch that holds half the box or more (rejection sampling)
        sq = (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1)),
              side, side)  # fmt: skip
        if 0.5 <= _held(sq, box) < 1.0:
            out.append(sq)
            break
    return out


def _edge_stretch(
    duration: float, event: tuple[float, float], end: bool, rng: np.random.Generator
) -> tuple[float, float]:
    """A window-long stretch (+ slack) that holds the event's start (or ``end``) only."""
    fill = float(rng.uniform(*EDGE_FILL)) * MODEL_WINDOW_S
    length = MODEL_WINDOW_S + EDGE_SLACK_S
    half = EDGE_SLACK_S / 2  # the sampler's middle window then has exactly ``fill``
    start = event[1] - fill - half if end else event[0] + fill - MODEL_WINDOW_S - half
    start = min(max(0.0, start), max(0.0, duration - length))
    return (start, min(duration, start + length))


def view_items(rec: dict[str, Any], cfg: CacheConfig) -> list[Item]:
    """(record, (t0, t1), square box, label) of each item one long-video record gives."""
    return [item for _, item in _kinded_items(rec, cfg)]


def edge_items(rec: dict[str, Any], cfg: CacheConfig) -> list[Item]:
    """Only the ``edge_views`` items of ``view_items`` (the same ones: same draws), for a cache
    that joins training late (``region="edges"``)."""
    return [item for kind, item in _kinded_items(rec, cfg) if kind == "edge"]


def _kinded_items(rec: dict[str, Any], cfg: CacheConfig) -> list[tuple[str, Item]]:
    """(kind, item) in ``view_items`` order; kind: view, partial, edge or background."""
    width, height, duration = int(rec["width"]), int(rec["height"]), float(rec["duration_s"])
    short = min(width, height)
    event = (float(rec["event_start_s"]), float(rec["event_end_s"]))
    bx, by, bw, bh = (int(v) for v in rec["event_box"])
    rng = np.random.default_rng([int(rec.get("seed", rec["index"])), 0x1_0F_EE])
    sides = [max(1, min(short, round(f * short))) for f in cfg.view_sides]
    t0 = max(0.0, event[0] - cfg.view_margin_s)
    t1 = min(duration, event[1] + cfg.view_margin_s)
    items: list[tuple[str, Item]] = [
        ("view", (rec, (t0, t1), _holding((bx, by, bw, bh), side, width, height, rng),
                  int(rec["label"])))
        for side in sides
    ]  # fmt: skip
    if cfg.partial_views:
        items += [
            ("partial", (rec, (t0, t1), sq, int(rec["label"])))
            for sq in _partial_squares((bx, by, bw, bh), sides, width, height, rng)
        ]
    for k in range(cfg.edge_views):
        side = sides[int(rng.integers(len(sides)))]
        stretch = _edge_stretch(duration, event, k % 2 == 1, rng)
        box = _holding((bx, by, bw, bh), side, width, height, rng)
        items.append(("edge", (rec, stretch, box, int(rec["label"]))))
    length = MODEL_WINDOW_S + BACKGROUND_SLACK_S
    for _ in range(cfg.background_views):
        start = _free_start(duration, event, length, rng)
        if start is None:
            continue
        side = sides[int(rng.integers(len(sides)))]
        square = (
            int(rng.integers(0, width - side + 1)),
            int(rng.integers(0, height - side + 1)),
            side,
            side,
        )
        items.append(("background", (rec, (start, start + length), square, BACKGROUND_LABEL)))
    return items
