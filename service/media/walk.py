"""Progress of one ``FrameSampler.sample`` call: which instants are settled, by which frame.

An instant is served by the decoded frame nearest to it in time (ties go to the earlier
frame), decided as soon as a frame at or after it comes out.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import av

# emit(instant index, frame time in seconds, frame)
Emit = Callable[[int, float, av.VideoFrame], None]


@dataclass
class Walk:
    """Progress of one ``sample`` call over its instants (sorted through ``order``)."""

    order: list[int]
    instants: Sequence[float]
    tolerances: Sequence[float]  # per instant
    sorted_times: list[float] = field(default_factory=list)
    pending: int = 0
    prev: tuple[float, av.VideoFrame] | None = None
    position: float | None = None  # time of the last decoded frame; None: at the start
    seeked_for: int | None = None
    seek_to: float = 0.0
    forced: bool = False  # the last seek was forced by a keyframe-only landing

    def next_instant(self) -> float:
        return self.instants[self.order[self.pending]]

    def next_tolerance(self) -> float:
        return self.tolerances[self.order[self.pending]]

    def near(self, t: float, margin: float) -> bool:
        """Whether a pending instant lies within ``margin`` of ``t``."""
        times = self.sorted_times
        i = bisect.bisect_left(times, t - margin, lo=self.pending)
        return i < len(times) and times[i] <= t + margin

    def settle(self, t: float, frame: av.VideoFrame, emit: Emit) -> None:
        """Emit every pending instant that frame ``t`` decides: the nearer of it and the
        previous frame (ties go to the earlier frame)."""
        while self.pending < len(self.order):
            inst = self.next_instant()
            if t < inst:
                return
            prev = self.prev
            if prev is not None and (inst - prev[0]) <= (t - inst):
                emit(self.order[self.pending], prev[0], prev[1])
            else:
                emit(self.order[self.pending], t, frame)
            self.pending += 1
