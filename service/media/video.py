"""Frame sampling by timestamp: the nearest decoded frame to each requested instant.

Times are seconds on the video stream's clock from its first frame (``pts × time_base`` minus
the stream start; never frame indices, so VFR and odd time bases are sampled correctly).
Streams probed with "index" timing are the exception: frame i is at i / fps.

Cost control: instants are visited in ascending order; the sampler seeks (to the keyframe
before an instant) only when that skips decoding, using the container's keyframe index when it
has one, and while an instant is still far ahead it asks the decoder to drop non-reference
frames (packet-level skipping of B-frames). Only the previous frame is ever held, so memory is
bounded by what the caller keeps, whatever the length of the video.

Corrupt packets are skipped. Instants after the last decodable frame get that frame (padding
for videos shorter than a clip); if the decodable frames cover less than
``policy.min_coverage`` of the duration, the file is ``undecodable``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import av

from service.errors import MediaError
from service.media.container import Deadline, configure_decoder, raise_media_error
from service.media.policy import MediaPolicy
from service.media.types import MediaInfo

Emit = Callable[[int, av.VideoFrame], None]

_NO_INDEX_SEEK_GAP_S = 2.0  # without a keyframe index, seek only for gaps larger than this


@dataclass
class SampleStats:
    decoded_frames: int = 0
    seeks: int = 0
    last_frame_s: float | None = None  # time of the last frame decoded before EOF, if reached


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
        self.stream = container.streams[info.video.index]
        if self.stream.type != "video":
            raise MediaError("stream layout changed since probing", code="undecodable")
        configure_decoder(self.stream, policy)
        self.tb = self.stream.time_base
        self.index_timing = info.video.timing == "index" or not self.tb
        self.fps = info.video.fps or policy.fallback_fps
        self.start_pts = 0 if self.index_timing else round(info.video.start_s / self.tb)
        self.stats = SampleStats()
        self._errors = 0
        self._frames_out = 0  # frames emitted by the decoder since the start ("index" timing)
        self._gap_s = _NO_INDEX_SEEK_GAP_S
        self._skip_nonref = False

    # -- decoding ------------------------------------------------------------------------------

    def _frame_time(self, frame: av.VideoFrame, previous: float | None) -> float:
        if self.index_timing:
            return (self._frames_out - 1) / self.fps
        if frame.pts is None:
            return (previous if previous is not None else 0.0) + 1.0 / self.fps
        return float((frame.pts - self.start_pts) * self.tb)

    def _set_skip(self, skip: bool) -> None:
        if skip != self._skip_nonref:
            self.stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skip_nonref = skip

    def _frames(self, want: Callable[[], float | None]) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded (time, frame) pairs from the current position; ``want()`` is the next
        instant still needed (used to decide whether non-reference frames may be dropped)."""
        lookahead = (4 + self.policy.decoder_threads) / self.fps
        last: float | None = None
        for packet in self.container.demux(self.stream):
            self.deadline.check()
            target = want()
            self._set_skip(target is not None and last is not None and last < target - lookahead)
            try:
                frames = self.stream.decode(packet)
            except (av.error.InvalidDataError, av.error.ArgumentError) as e:
                self._errors += 1
                if self._errors > self.policy.max_decode_errors:
                    if self.stats.decoded_frames == 0:
                        raise_media_error(e, "decoding video")
                    return
                continue
            except Exception as e:
                raise_media_error(e, "decoding video")
            for frame in frames:
                self.stats.decoded_frames += 1
                self._frames_out += 1
                if self.stats.decoded_frames > self.policy.max_decoded_frames:
                    raise MediaError(
                        f"more than {self.policy.max_decoded_frames} frames to decode",
                        code="too_large",
                    )
                last = self._frame_time(frame, last)
                yield last, frame

    # -- seeking -------------------------------------------------------------------------------

    def _keyframes(self) -> list[float] | None:
        entries = self.stream.index_entries
        if len(entries) < 2:
            return None
        times = [
            float((e.timestamp - self.start_pts) * self.tb) for e in entries if e.is_keyframe
        ]
        return sorted(times) if times else None

    def _should_seek(self, target: float, position: float | None) -> bool:
        if self.index_timing:
            return False
        here = position if position is not None else 0.0
        keyframes = self._keyframes()
        if keyframes is not None:
            i = bisect.bisect_right(keyframes, target) - 1
            return i >= 0 and keyframes[i] > here + 1e-6
        return target - here > self._gap_s

    def _seek(self, t: float) -> None:
        ts = self.start_pts + int(max(t, 0.0) / self.tb)
        try:
            self.container.seek(ts, stream=self.stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OverflowError) as e:
            raise_media_error(e, "seeking")
        self.stats.seeks += 1

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, instants: Sequence[float], emit: Emit, *, tolerance_s: float = 0.0) -> None:
        """Call ``emit(i, frame)`` once for every instant i, with the frame chosen for it.

        Exact mode (``tolerance_s=0``): the frame nearest in time. Otherwise the earliest
        frame within ±tolerance (e.g. the keyframe a seek lands on), else the nearest.
        """
        order = sorted(range(len(instants)), key=lambda i: instants[i])
        state = _Walk(order=order, instants=instants, tolerance_s=tolerance_s)
        while state.pending < len(order):
            target = state.next_instant()
            if self._should_seek(target, state.position):
                self._seek(target)
                state.seeked_for, state.seek_to, state.prev = state.pending, target, None
            if self._walk(state, emit) == "eof":
                self._finish(instants, order[state.pending :], state.prev, emit)
                return

    def _walk(self, state: _Walk, emit: Emit) -> str:
        """Decode forward, settling instants; returns "seek" (or done) or "eof"."""
        retries = 0
        while True:
            landed = state.prev is None and state.seeked_for is not None
            late = False
            for t, frame in self._frames(state.want):
                if landed:
                    landed = False
                    # A seek can land after the instant (index in DTS, sparse cues) or nowhere.
                    target = state.next_instant()
                    late = t > target + state.tolerance_s + 1.0 / self.fps
                    if late and state.seek_to > 0 and retries < 4:
                        break
                    late = False
                    if state.position is not None and t < state.position - 1e-6:
                        self._gap_s *= 2  # landed behind where we were: seeking does not pay
                state.position = t
                before = state.pending
                state.settle(t, frame, emit)
                state.prev = (t, frame)
                if state.pending == len(state.order):
                    return "seek"  # all settled; the caller's loop ends
                if state.pending != before and self._should_seek(
                    state.next_instant(), state.position
                ):
                    return "seek"
            else:
                late = landed and state.seek_to > 0 and retries < 4  # no frame after the seek
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
        if covered < self.policy.min_coverage:
            raise MediaError(
                f"only {covered:.0%} of the video decodes (corrupt or truncated file)",
                code="undecodable",
            )
        for i in rest:
            emit(i, prev[1])


@dataclass
class _Walk:
    """Progress of one ``sample`` call over its instants (sorted through ``order``)."""

    order: list[int]
    instants: Sequence[float]
    tolerance_s: float
    pending: int = 0
    prev: tuple[float, av.VideoFrame] | None = None
    position: float | None = None  # time of the last decoded frame; None: at the start
    seeked_for: int | None = None
    seek_to: float = 0.0

    def next_instant(self) -> float:
        return self.instants[self.order[self.pending]]

    def want(self) -> float | None:
        if self.pending >= len(self.order):
            return None
        return self.next_instant() - self.tolerance_s

    def settle(self, t: float, frame: av.VideoFrame, emit: Emit) -> None:
        """Emit every pending instant that frame ``t`` decides."""
        tol = self.tolerance_s
        while self.pending < len(self.order):
            inst = self.next_instant()
            if t < inst - tol:
                return
            within = abs(t - inst) <= tol
            prev = self.prev
            if not within and prev is not None and (inst - prev[0]) <= (t - inst):
                emit(self.order[self.pending], prev[1])
            else:
                emit(self.order[self.pending], frame)
            self.pending += 1
