"""Frame sampling by timestamp: the nearest decoded frame to each requested instant.

Times are seconds on the video stream's clock from its first frame (``pts × time_base`` minus
the stream start; never frame indices, so VFR and odd time bases are sampled correctly).
Streams probed with "index" timing are the exception: frame i is at i / fps.

Cost control: instants are visited in ascending order; the sampler seeks (to the keyframe
before an instant) only when that skips decoding. With the probe's keyframe index
(``info.video.keyframes_s``) reads are planned by ``gop_plan`` (one forward pass per GOP, seek
or continue by estimated cost, tolerant reads moved where they end a pass sooner); without it,
the container's index is used and seeks are learnt from where they land. Packets farther
than half a frame spacing from every pending instant cannot be the nearest frame to any of
them, so the decoder drops them when nothing references them
(packet-level skipping of B-frames, in run-ups and between the frames a strided clip takes).
With a tolerance (glance snippets) a seek may aim at the indexed keyframe nearest an instant
and decode only that keyframe. Only the previous frame is ever held, so memory is bounded by
what the caller keeps, whatever the length of the video.

Corrupt packets are skipped. Instants after the last decodable frame get that frame (padding
for videos shorter than a clip); if the decodable frames cover less than
``policy.min_coverage`` of the duration, the file is ``undecodable``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av

from service.errors import MediaError
from service.media import gop_plan
from service.media.container import Deadline, configure_decoder, raise_media_error
from service.media.policy import MediaPolicy
from service.media.types import MediaInfo
from service.media.walk import Emit, Walk

Skip = Literal["DEFAULT", "NONREF", "NONKEY"]

_NO_INDEX_SEEK_GAP_S = 2.0  # without a keyframe index, seek only for gaps larger than this


@dataclass
class SampleStats:
    decoded_frames: int = 0
    seeks: int = 0
    last_frame_s: float | None = None  # time of the last frame decoded before EOF, if reached
    decode_errors: int = 0  # corrupt packets skipped
    coverage: float = 1.0  # share of the duration the decodable frames cover (EOF reached early)


class FrameSampler:
    """Decodes one video stream of an open container and emits frames for instants."""

    def __init__(
        self,
        container: av.container.InputContainer,
        info: MediaInfo,
        policy: MediaPolicy,
        deadline: Deadline,
    ) -> None:
        self.container = container
        self.info = info
        self.policy = policy
        self.deadline = deadline
        stream = container.streams[info.video.index]
        if not isinstance(stream, av.video.stream.VideoStream):
            raise MediaError("stream layout changed since probing", code="undecodable")
        self.stream = stream
        configure_decoder(stream, policy)
        self.index_timing = info.video.timing == "index" or not stream.time_base
        self.tb: Fraction = stream.time_base or Fraction(1, 1)
        # per-packet times in float arithmetic (Fraction costs ~10 us per product; the
        # difference is far below a microsecond)
        self._tb_s = float(self.tb)
        self.fps = info.video.fps or policy.fallback_fps
        self.start_pts = 0 if self.index_timing else round(info.video.start_s / self.tb)
        self.stats = SampleStats()
        self._errors = 0
        self._frames_out = 0  # frames emitted by the decoder since the start ("index" timing)
        self._gap_s = _NO_INDEX_SEEK_GAP_S
        # A seek flushes the decoder and restarts at a keyframe: only worth it when it skips
        # more than this (grows when seeks turn out to land behind the current position).
        self._min_gain_s = max(0.5, 8.0 / self.fps)
        self._keyframe_cache: list[float] | None = None
        self._keyframe_gap = 1.0  # widest keyframe spacing in the index (at least 1 s)
        self._cost = gop_plan.CostModel(self.fps, gop_plan.ref_fraction(info.video.codec))
        # The probe's keyframe index (presentation times of the whole stream): seeks are then
        # planned by estimated cost instead of learnt from where they land.
        known = info.video.keyframes_s
        self._exact_index = bool(known) and not self.index_timing
        if self._exact_index:
            self._keyframe_cache = sorted(known or ())
        self.plan: gop_plan.ReadPlan | None = None  # the plan of the last sample() call
        # Index times can be decode times (mp4), a few frames before the presentation times
        # seeks compare against; learnt from where seeks actually land.
        self._index_shift = 0.0
        self._skip: Skip = "DEFAULT"  # the decoder's skip_frame setting
        # Packets this close to a pending instant are always decoded: an instant's nearest
        # frame is within half the frame spacing (the widest spacing seen, plus a little for
        # timestamp rounding).
        self._spacing = 1.0 / self.fps
        self._margin = 0.6 / self.fps
        self._durations = False  # the container gives packet durations
        # Keyframe-only landing (approximate mode): after a seek, the decoder drops every
        # non-key packet until the keyframe comes out. The frames after it are then unusable
        # ("dirty"), so the next instant always seeks.
        self._keyframe_only = False
        self._dirty = False

    # -- decoding ------------------------------------------------------------------------------

    def _frame_time(self, frame: av.VideoFrame, previous: float | None) -> float:
        if self.index_timing:
            return (self._frames_out - 1) / self.fps
        if frame.pts is None:
            return (previous if previous is not None else 0.0) + 1.0 / self.fps
        return (frame.pts - self.start_pts) * self._tb_s

    def _note_spacing(self, gap_s: float) -> None:
        """Widen the never-skip margin to half the widest frame spacing seen (VFR)."""
        if self._spacing < gap_s < 10.0:
            self._spacing = gap_s
            self._margin = 0.5 * gap_s + 0.1 / self.fps

    def _set_skip(self, mode: Skip) -> None:
        if mode != self._skip:
            self.stream.codec_context.skip_frame = mode
            self._skip = mode

    def _frames(
        self, needed: Callable[[float, float], bool]
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded (time, frame) pairs from the current position.

        Packet-level skipping: a packet more than half the frame spacing away from every
        pending instant cannot be the nearest frame to any of them, so the decoder may drop it
        when no other frame references it (``skip_frame=NONREF``, decided per packet): B-frames
        during the run-up to a window and between the frames a strided clip takes.
        ``needed(t, margin)`` says whether some pending instant is within margin of t.
        """
        last: float | None = None
        skipped = False  # a packet may have been dropped since the last frame came out
        for packet in self.container.demux(self.stream):
            self.deadline.check()
            if packet.duration and packet.duration > 0:
                self._durations = True
                self._note_spacing(packet.duration * self._tb_s)
            if self._keyframe_only:
                self._set_skip("NONKEY")
            elif self.index_timing or packet.pts is None:
                self._set_skip("DEFAULT")  # index timing counts frames: it must see them all
            else:
                t = (packet.pts - self.start_pts) * self._tb_s
                self._set_skip("DEFAULT" if needed(t, self._margin) else "NONREF")
            skipped = skipped or self._skip != "DEFAULT"
            try:
                frames = self.stream.decode(packet)
                if self._keyframe_only and packet.is_keyframe:
                    # Drain now instead of waiting for the frames a reorder buffer would want;
                    # the next step is a seek, which resets the decoder.
                    frames += self.stream.decode(None)
            except (av.error.InvalidDataError, av.error.ArgumentError) as e:
                self._errors += 1
                self.stats.decode_errors += 1
                if self._errors > self.policy.max_decode_errors:
                    if self.stats.decoded_frames == 0:
                        raise_media_error(e, "decoding video")
                    return
                continue
            except Exception as e:
                raise_media_error(e, "decoding video")
            for frame in frames:
                if self._keyframe_only:
                    self._keyframe_only, self._dirty = False, True
                self.stats.decoded_frames += 1
                self._frames_out += 1
                if self.stats.decoded_frames > self.policy.max_decoded_frames:
                    raise MediaError(
                        f"more than {self.policy.max_decoded_frames} frames to decode",
                        code="too_large",
                    )
                t = self._frame_time(frame, last)
                if last is not None and t > last and not (skipped or self._durations):
                    self._note_spacing(t - last)  # containers without packet durations
                last, skipped = t, False
                yield t, frame

    # -- seeking -------------------------------------------------------------------------------

    def _keyframes(self) -> list[float] | None:
        """Keyframe times from the container index (mp4 sample tables, mkv cues), None when
        missing or a single entry. Demuxers add entries as they read and load cues on the
        first seek, so the cache is rebuilt after every seek."""
        if self._keyframe_cache is None and not self._exact_index:
            entries = self.stream.index_entries
            if len(entries) >= 2:
                start, tb = self.start_pts, self.tb
                times = [float((e.timestamp - start) * tb) for e in entries if e.is_keyframe]
                self._keyframe_cache = sorted(times) or None
                gaps = [b - a for a, b in itertools.pairwise(self._keyframe_cache or [])]
                self._keyframe_gap = max(max(gaps, default=0.0), 1.0)
        return self._keyframe_cache

    def _keyframe_before(self, t: float) -> float | None:
        """Presentation time of the last keyframe at or before ``t``; None when the index does
        not reach ``t`` (a partial index, built while reading, says nothing about later on)."""
        keyframes = self._keyframes()
        if keyframes is None:
            return None
        if keyframes[-1] + self._keyframe_gap < t and not self._exact_index:
            return None
        i = bisect.bisect_right(keyframes, t - self._index_shift) - 1
        return keyframes[i] + self._index_shift if i >= 0 else None

    def _learn_index_shift(self, landed_s: float) -> None:
        keyframes = self._keyframes()
        if keyframes is None:
            return
        i = bisect.bisect_right(keyframes, landed_s + 1e-6) - 1
        if i >= 0 and 0.0 <= landed_s - keyframes[i] < 1.0:
            self._index_shift = landed_s - keyframes[i]

    def _should_seek(self, target: float, position: float | None) -> bool:
        if self.index_timing:
            return False
        here = position if position is not None else 0.0
        keyframe = self._keyframe_before(target)
        if keyframe is not None and self._exact_index:
            return gop_plan.seek_pays(position, keyframe, target, self._cost)
        if keyframe is not None:
            return keyframe - here > self._min_gain_s
        return target - here > self._gap_s

    def _plan(self, instant: float, tolerance_s: float) -> tuple[float, bool]:
        """Where to seek for ``instant`` and whether the landing keyframe will do by itself.

        With a tolerance and an index: the indexed keyframe nearest the instant, if within
        tolerance (seeking past it, but before the next one, lands on it). Otherwise the
        instant itself (the landing keyframe is still used when it is within tolerance).
        """
        if tolerance_s <= 0:
            return instant, False
        before = self._keyframe_before(instant)
        after = self._keyframe_before(instant + tolerance_s)
        candidates = [k for k in (before, after) if k is not None]
        if not candidates:
            return instant, False  # no index: land on the keyframe at or before the instant
        best = min(candidates, key=lambda k: abs(k - instant))
        if abs(best - instant) > tolerance_s:
            return instant, False
        # aim halfway to the next keyframe: robust to index times that run a little early
        keyframes = self._keyframes() or []
        later = [k + self._index_shift for k in keyframes if k + self._index_shift > best + 1e-6]
        return best + (min(later) - best) / 2 if later else best + 0.5, True

    def _seek(self, t: float, *, keyframe_only: bool = False) -> None:
        self._keyframe_only, self._dirty = keyframe_only, False
        ts = self.start_pts + int(max(t, 0.0) / self.tb)
        try:
            self.container.seek(ts, stream=self.stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OverflowError) as e:
            raise_media_error(e, "seeking")
        self.stats.seeks += 1
        if not self._exact_index:
            self._keyframe_cache = None

    # -- sampling ------------------------------------------------------------------------------

    def _reads(
        self, instants: Sequence[float], tolerance_s: float
    ) -> tuple[list[float], list[float]]:
        """Where to read each instant and with what tolerance, per ``gop_plan`` when the
        keyframe index is known (else every instant as given, with the common tolerance)."""
        times, tolerances = list(instants), [tolerance_s] * len(instants)
        if not self._exact_index:
            return times, tolerances
        keyframes = self._keyframes() or []
        reads = gop_plan.choose_reads(instants, keyframes, tolerance_s, self._margin)
        for r in reads:
            if not r.keyframe_only:  # no keyframe within tolerance: an exact read
                times[r.instant], tolerances[r.instant] = r.time_s, 0.0
        self.plan = gop_plan.plan_reads(reads, keyframes, self.info.duration_s, self._cost)
        return times, tolerances

    def sample(self, instants: Sequence[float], emit: Emit, *, tolerance_s: float = 0.0) -> None:
        """Call ``emit(i, time, frame)`` once for every instant i, with the frame chosen for it.

        The frame nearest in time is chosen, except that with ``tolerance_s > 0`` the frame a
        seek lands on (a keyframe) is accepted for instants within ±tolerance of it, which
        avoids decoding the rest of its group of pictures. With a keyframe index, an instant
        that no keyframe serves and that ends its GOP's pass is read at the earliest time its
        tolerance allows (``gop_plan.choose_reads``).
        """
        times, tolerances = self._reads(instants, tolerance_s)
        order = sorted(range(len(times)), key=lambda i: times[i])
        state = Walk(order, times, tolerances, [times[i] for i in order])
        while state.pending < len(order):
            target, keyframe_only = self._plan(state.next_instant(), state.next_tolerance())
            forced = self._dirty
            if forced or self._should_seek(target, state.position):
                self._seek(target, keyframe_only=keyframe_only)
                state.seeked_for, state.seek_to, state.prev = state.pending, target, None
                state.forced = forced
            if self._walk(state, emit) == "eof":
                self._finish(times, order[state.pending :], state.prev, emit)
                return

    def _walk(self, state: Walk, emit: Emit) -> str:
        """Decode forward, settling instants; returns "seek" (or done) or "eof"."""
        retries = 0
        while True:
            landed = state.prev is None and state.seeked_for is not None
            late = redo = False
            for t, frame in self._frames(state.near):
                before = state.pending
                if landed:
                    landed = False
                    self._learn_index_shift(t)
                    # A seek can land after the instant (index in DTS, sparse cues) or nowhere.
                    target = state.next_instant()
                    late = t > target + state.next_tolerance() + 1.0 / self.fps
                    if late and state.seek_to > 0 and retries < 4:
                        break
                    late = False
                    if not state.forced and state.position is not None and t <= state.position:
                        # landed where we already were: seeking does not pay at this distance
                        self._gap_s *= 2
                        self._min_gain_s *= 2
                    # Approximate mode: the frame a seek lands on (a keyframe, decoded anyway)
                    # stands in for every instant within the tolerance.
                    while state.pending < len(state.order) and (
                        abs(t - state.next_instant()) <= state.next_tolerance()
                    ):
                        emit(state.order[state.pending], t, frame)
                        state.pending += 1
                    if self._dirty:  # keyframe-only landing: what follows was not decoded
                        if state.pending == before:
                            redo = True  # mispredicted: decode this GOP properly
                            break
                        state.position = t
                        return "seek"
                state.position = t
                state.settle(t, frame, emit)
                state.prev = (t, frame)
                if state.pending == len(state.order):
                    return "seek"  # all settled; the caller's loop ends
                if state.pending != before and self._should_seek(
                    self._plan(state.next_instant(), state.next_tolerance())[0], state.position
                ):
                    return "seek"
            else:
                late = landed and state.seek_to > 0 and retries < 4  # no frame after the seek
            if redo:
                self._seek(state.seek_to)
                state.prev = None
                continue
            if not late:
                return "eof"
            retries += 1
            state.seek_to = max(state.next_instant() - 2.0**retries, 0.0)
            self._seek(state.seek_to)

    def _finish(
        self,
        instants: Sequence[float],
        rest: Sequence[int],
        prev: tuple[float, av.VideoFrame] | None,
        emit: Emit,
    ) -> None:
        """End of stream: the remaining instants get the last frame, if it covers enough."""
        if not rest:
            return
        if prev is None:
            raise MediaError("no video frame could be decoded", code="undecodable")
        last_t = prev[0]
        self.stats.last_frame_s = last_t
        covered = (last_t + 1.0 / self.fps) / max(self.info.duration_s, 1e-9)
        self.stats.coverage = min(covered, 1.0)
        if covered < self.policy.min_coverage:
            raise MediaError(
                f"only {covered:.0%} of the video decodes (corrupt or truncated file)",
                code="undecodable",
            )
        for i in rest:
            emit(i, last_t, prev[1])
