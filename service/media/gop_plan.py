"""Read planning from a video stream's keyframe index (pure functions, no I/O).

Decoding can only start at a keyframe, and every reference frame between that keyframe and a
wanted frame must be decoded; non-reference frames (H.264/HEVC B-frames that nothing predicts
from) far from every wanted instant are skipped (``skip_frame=NONREF``). So reading a set of
instants costs, per group of pictures (GOP) touched, the reference frames from where decoding
starts (its keyframe after a seek, or wherever the decoder already is) to the last instant
read in it, plus the frames at the instants themselves.

The plan groups sorted reads by GOP (reads that share a GOP are one forward pass) and decides
per group whether to seek to its keyframe or keep decoding from the current position,
whichever is estimated cheaper. Seeking to a keyframe never costs more frames than continuing,
only the fixed ``seek_frames`` (decoder flush and restart), so the choice per group is
independent of the others and the greedy plan is the cheapest. Reads with a tolerance (glance
snippets) are served by a keyframe within tolerance when there is one (only that frame is
decoded); otherwise the last such read of a GOP takes the earliest frame its tolerance allows,
which shortens the pass through that GOP.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.media.geometry import clamp_start, snippet_times
from service.media.types import ClipSpec, SnippetSpec

# Share of frames still decoded while scanning with skip_frame=NONREF, by codec (measured on
# x264/x265 output with 3 B-frames: ~0.53). Codecs without non-reference frames decode all.
_REF_FRACTION = {"h264": 0.55, "hevc": 0.55, "mpeg2video": 0.7, "mpeg4": 0.7}


def ref_fraction(codec: str) -> float:
    """Estimated share of frames a NONREF scan of ``codec`` still decodes."""
    return _REF_FRACTION.get(codec, 1.0)


@dataclass(frozen=True)
class CostModel:
    """Decode cost in frame decodes."""

    fps: float
    ref_fraction: float = 1.0
    seek_frames: float = 4.0  # a seek flushes the decoder; its threads refill the pipeline

    def scan(self, seconds: float) -> float:
        """Frames decoded while scanning forward ``seconds`` (non-reference frames skipped)."""
        return max(seconds, 0.0) * self.fps * self.ref_fraction


@dataclass(frozen=True)
class Read:
    """Where one instant is read: its own time, a keyframe (``keyframe_only``), or the
    earliest time its tolerance allows (``moved``)."""

    instant: int  # index into the caller's instants
    time_s: float
    keyframe_only: bool = False
    moved: bool = False


@dataclass(frozen=True)
class Pass:
    """One forward pass through one GOP: the reads it serves and how it starts."""

    gop: int
    keyframe_s: float
    seek: bool  # starts with a seek to ``keyframe_s`` (else continues from the position)
    first_s: float
    last_s: float
    reads: int
    frames: float  # estimated frame decodes


@dataclass(frozen=True)
class ReadPlan:
    passes: tuple[Pass, ...]
    sequential_frames: float  # estimate for one pass from the start without any seek
    full_frames: float  # every frame of the video

    @property
    def seeks(self) -> int:
        return sum(p.seek for p in self.passes)

    @property
    def frames(self) -> float:
        return sum(p.frames for p in self.passes)

    @property
    def strategy(self) -> str:
        if not self.passes or self.seeks == 0:
            return "sequential"
        return "seek" if self.seeks == len(self.passes) else "mixed"

    def summary(self) -> dict[str, Any]:
        return {
            "gops": len(self.passes),
            "seeks": self.seeks,
            "frames_est": round(_capped(self.frames, self.full_frames)),
            "sequential_frames_est": round(self.sequential_frames),
            "full_frames_est": round(self.full_frames),
            "strategy": self.strategy,
        }


def gop_of(keyframes: Sequence[float], t: float) -> int:
    """Index of the GOP holding time ``t`` (the last keyframe at or before it; 0 before the
    first keyframe)."""
    return max(bisect.bisect_right(keyframes, t + 1e-9) - 1, 0)


def choose_reads(
    instants: Sequence[float],
    keyframes: Sequence[float],
    tolerance_s: float,
    frame_margin_s: float = 0.0,
) -> list[Read]:
    """Where to read each instant, sorted by time.

    Exact reads (``tolerance_s <= 0``) keep every instant. With a tolerance, an instant with a
    keyframe within it takes the nearest such keyframe; of the others, the last one in each
    GOP moves to the earliest time it accepts (no keyframe lies within its tolerance, so that
    time is still in the same GOP), so the pass through the GOP stops sooner. Earlier ones
    stay exact: the pass goes past them anyway. ``frame_margin_s`` (a little over half the
    frame spacing) keeps the frame nearest to the moved time within tolerance.
    """
    reads: list[Read] = []
    for i, t in enumerate(instants):
        if tolerance_s > 0 and keyframes:
            j = bisect.bisect_left(keyframes, t)
            near = [keyframes[k] for k in (j - 1, j) if 0 <= k < len(keyframes)]
            best = min(near, key=lambda k: (abs(k - t), k))
            if abs(best - t) <= tolerance_s:
                reads.append(Read(i, best, keyframe_only=True))
                continue
        reads.append(Read(i, t))
    reads.sort(key=lambda r: (r.time_s, r.instant))
    if tolerance_s <= 0 or not keyframes:
        return reads
    last_in_gop: dict[int, int] = {}
    for n, r in enumerate(reads):
        if not r.keyframe_only:
            last_in_gop[gop_of(keyframes, r.time_s)] = n
    slack = tolerance_s - frame_margin_s
    for n in last_in_gop.values():
        r = reads[n]
        if slack > 0:
            earliest = max(r.time_s - slack, keyframes[gop_of(keyframes, r.time_s)])
            reads[n] = Read(r.instant, earliest, moved=True)
    reads.sort(key=lambda r: (r.time_s, r.instant))
    return reads


def seek_pays(
    position_s: float | None, keyframe_s: float, target_s: float, cost: CostModel
) -> bool:
    """Whether seeking to ``keyframe_s`` to reach ``target_s`` is cheaper than decoding on
    from ``position_s`` (None: nothing decoded yet, the decoder is at the start)."""
    here = position_s if position_s is not None else 0.0
    if keyframe_s <= here or target_s <= here:
        return False  # the decoder is already inside that GOP (or past the target)
    return cost.scan(target_s - here) > cost.scan(target_s - keyframe_s) + cost.seek_frames


def plan_reads(
    reads: Sequence[Read], keyframes: Sequence[float], duration_s: float, cost: CostModel
) -> ReadPlan:
    """Group sorted ``reads`` into one pass per GOP and decide how each pass starts."""
    full = max(duration_s, 0.0) * cost.fps
    passes: list[Pass] = []
    position: float | None = None
    kfs = list(keyframes) or [0.0]
    n = 0
    while n < len(reads):
        g = gop_of(kfs, reads[n].time_s)
        group = [reads[n]]
        n += 1
        while n < len(reads) and gop_of(kfs, reads[n].time_s) == g:
            group.append(reads[n])
            n += 1
        first, last = group[0].time_s, group[-1].time_s
        key = kfs[g]
        only_key = all(r.keyframe_only for r in group)
        seek = seek_pays(position, key, first, cost)
        start = key if seek else (position if position is not None else 0.0)
        if only_key and seek:
            frames = 1.0  # the keyframe by itself
        else:
            # reference frames up to the last read, plus the (possibly non-reference) frames
            # at the instants themselves
            exact = sum(not r.keyframe_only for r in group)
            frames = cost.scan(last - start) + exact * (1.0 - cost.ref_fraction) + 1.0
        passes.append(Pass(g, key, seek, first, last, len(group), frames))
        position = last
    last_read = reads[-1].time_s if reads else 0.0
    exact_all = sum(not r.keyframe_only for r in reads)
    sequential = cost.scan(last_read) + exact_all * (1.0 - cost.ref_fraction) + 1.0
    return ReadPlan(tuple(passes), min(sequential, full) if reads else 0.0, full)


def _capped(frames: float, full: float) -> float:
    return min(frames, full) if full > 0 else frames


def window_frames(
    keyframes: Sequence[float], start_s: float, span_s: float, frames: int, cost: CostModel
) -> float:
    """Estimated frame decodes of one clip window read after a seek: the run-up from its
    keyframe, the reference frames across the window and its ``frames`` instants."""
    key = keyframes[gop_of(keyframes, start_s)] if keyframes else 0.0
    run_up = cost.scan(start_s - key) + cost.seek_frames
    return run_up + cost.scan(span_s) + min(frames, span_s * cost.fps) * (1 - cost.ref_fraction)


def describe_index(keyframes: Sequence[float], duration_s: float, source: str) -> dict[str, Any]:
    """JSON-ready facts about a keyframe index (for probe output)."""
    ends = [*keyframes[1:], max(duration_s, keyframes[-1])] if keyframes else []
    gops = [b - a for a, b in zip(keyframes, ends, strict=True) if b > a]
    return {
        "source": source,
        "keyframes": len(keyframes),
        "gop_mean_s": round(sum(gops) / len(gops), 3) if gops else None,
        "gop_max_s": round(max(gops), 3) if gops else None,
    }


def describe(
    keyframes: Sequence[float] | None,
    source: str,
    duration_s: float,
    fps: float,
    codec: str,
    snippets: SnippetSpec | None = None,
    clip: ClipSpec | None = None,
) -> dict[str, Any]:
    """The probe's report: index facts, the plan of the default glance, and the estimated
    decodes of one clip window centred on a snippet (averaged over the snippets)."""
    snippets, clip = snippets or SnippetSpec(), clip or ClipSpec()
    cost = CostModel(fps, ref_fraction(codec))
    kfs = list(keyframes or [])
    report: dict[str, Any] = {"index": describe_index(kfs, duration_s, source)}
    report["nonref_skip_fraction_est"] = round(1.0 - cost.ref_fraction, 2)
    if not kfs:
        report["strategy"] = "sequential"  # no index: no planned seeks
        return report
    times = snippet_times(duration_s, snippets.num_snippets)
    tolerance = max(snippets.frame_tolerance, 0.0) * duration_s / snippets.num_snippets
    reads = choose_reads(times, kfs, tolerance, 0.6 / fps)
    report["glance"] = plan_reads(reads, kfs, duration_s, cost).summary()
    span = min(clip.duration_s, duration_s)
    starts = [clamp_start(c - clip.duration_s / 2, clip.duration_s, duration_s) for c in times]
    per_window = [window_frames(kfs, s, span, clip.num_frames, cost) for s in starts]
    full = duration_s * fps
    report["clip_window_frames_est"] = round(_capped(sum(per_window) / len(per_window), full))
    report["full_frames_est"] = round(full)
    return report
