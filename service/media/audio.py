"""Audio windows: decode, mix to mono, resample once per window to the model's rate.

Channels are averaged (as the official AVSlowFast loader does; swresample's downmix would
weight the centre channel instead). Each requested span is assembled at the native rate from
decoded frames placed by timestamp, then resampled to 16 kHz in one piece (resampling chunk by
chunk is not equivalent at chunk edges); the windows of one request share a resampler pass. Spans are visited in time order with a bounded buffer
(only frames that overlap the current span are kept) and a seek when the next span is far.
Missing audio (gaps, before the first or after the last sample) is zeros.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
import numpy as np
from av.audio.resampler import AudioResampler

from service.errors import MediaError
from service.media.container import Deadline, configure_decoder, raise_media_error
from service.media.policy import MediaPolicy
from service.media.signals import silence_to_zeros
from service.media.types import MediaInfo

_SEEK_GAP_S = 1.0  # decode through gaps shorter than this instead of seeking
_PREROLL_S = 0.1  # seek this much before a span: decoders need a frame or two to settle
_SNAP_S = 0.02  # frames this close to the running end are contiguous (timestamp rounding)

_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


_DTYPE: dict[str, type[np.generic]] = {
    "u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64,
    "flt": np.float32, "dbl": np.float64,
}  # fmt: skip


def to_mono(frame: av.AudioFrame) -> np.ndarray:
    """float32 mono samples of a decoded frame (mean of the channels; not yet clipped).

    Reads the planes in place: ``AudioFrame.to_ndarray`` stacks planar channels into a new
    array first, which costs more than the mean on the ~1000-sample frames of AAC/Opus.
    """
    name = frame.format.name.rstrip("p")
    dtype = _DTYPE.get(name)
    channels = max(frame.layout.nb_channels, 1)
    n = frame.samples
    if dtype is None:  # a sample format without a plain numeric type
        data = frame.to_ndarray()
        data = data.reshape(-1, channels).T if not frame.format.is_planar else data
        return data.mean(axis=0, dtype=np.float32)
    if frame.format.is_planar:
        planes = [np.frombuffer(memoryview(p), dtype, count=n) for p in frame.planes[:channels]]
    else:
        packed = np.frombuffer(memoryview(frame.planes[0]), dtype, count=n * channels)
        planes = [packed[c::channels] for c in range(channels)]
    mono = planes[0].astype(np.float32)
    for plane in planes[1:]:
        # each channel cast to float32 first, summed in channel order: as mean(axis=0) does
        np.add(mono, plane, out=mono, dtype=np.float32, casting="unsafe")
    if name == "u8":
        mono -= 128.0 * channels
    if channels > 1:
        mono /= channels
    return mono / _SCALE[name] if name in _SCALE else mono


def resample_many(
    segments: Sequence[np.ndarray], rate: int, out_rate: int, out_samples: int
) -> np.ndarray:
    """Resample each mono segment to exactly ``out_samples`` at ``out_rate``.

    Every segment goes through swresample in one piece (never chunked), but all of them in
    a single resampler pass: they are laid end to end with silent guards longer than the
    filter, each placed at an input offset that maps to a whole output sample. Building the
    resampler costs more than running it, so one pass per request instead of per window.
    """
    out = np.zeros((len(segments), out_samples), np.float32)
    if not segments:
        return out
    if rate == out_rate:
        for k, seg in enumerate(segments):
            n = min(seg.size, out_samples)
            out[k, :n] = seg[:n]
        return _clean(out)
    unit = rate // math.gcd(rate, out_rate)  # input samples per whole output step
    step = out_rate * unit // rate
    guard = unit * math.ceil(0.02 * rate / unit)  # 20 ms of silence between segments
    starts, total = [], 0
    for seg in segments:
        starts.append(total)
        total += unit * math.ceil(max(seg.size, 1) / unit) + guard
    joined = np.zeros(total + guard, np.float32)
    for start, seg in zip(starts, segments, strict=True):
        joined[start : start + seg.size] = seg
    frame = av.AudioFrame.from_ndarray(joined[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    resampler = AudioResampler(format="flt", layout="mono", rate=out_rate)
    parts = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    resampled = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    for k, start in enumerate(starts):
        first = start // unit * step
        n = min(out_samples, max(resampled.size - first, 0))
        out[k, :n] = resampled[first : first + n]
    return _clean(out)


def _clean(x: np.ndarray) -> np.ndarray:
    """Finite samples in [-1, 1] (corrupt float audio can carry NaN/inf)."""
    if not np.isfinite(x).all():
        np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(x, -1.0, 1.0, out=x)


class AudioReader:
    """Reads mono windows from the chosen audio stream of an open container."""

    def __init__(
        self,
        container: av.container.InputContainer,
        info: MediaInfo,
        policy: MediaPolicy,
        deadline: Deadline,
    ) -> None:
        assert info.audio is not None
        self.container = container
        self.info = info
        self.deadline = deadline
        self.policy = policy
        stream = container.streams[info.audio.index]
        if not isinstance(stream, av.audio.stream.AudioStream):
            raise MediaError("stream layout changed since probing", code="undecodable")
        self.stream = stream
        configure_decoder(stream, policy)
        self.rate = info.audio.sample_rate
        self.tb: Fraction | None = stream.time_base
        self._tb_s = float(self.tb) if self.tb else 0.0  # float per-frame arithmetic
        self._chunks: list[tuple[int, np.ndarray]] = []  # (first sample index, samples)
        self._end: int | None = None  # sample index after the last decoded sample
        self._frames: Iterator[av.AudioFrame] | None = None
        self._eof = False
        self._errors = 0

    @property
    def decode_errors(self) -> int:
        """Corrupt audio packets skipped so far."""
        return self._errors

    def windows(
        self, spans: Sequence[tuple[float, float]], out_rate: int, out_samples: int
    ) -> np.ndarray:
        """float32 [len(spans), out_samples]; spans are (start, end) on the video clock."""
        native: list[np.ndarray] = [np.zeros(0, np.float32)] * len(spans)
        offset = self.info.video.start_s  # video clock -> container clock
        for k in sorted(range(len(spans)), key=lambda i: spans[i][0]):
            a0, a1 = spans[k][0] + offset, spans[k][1] + offset
            i0, i1 = round(a0 * self.rate), round(a1 * self.rate)
            if i1 <= i0:
                continue
            self._position_for(i0)
            self._fill(i0, i1)
            native[k] = self._extract(i0, i1)
        return resample_many(native, self.rate, out_rate, out_samples)

    # -- buffer --------------------------------------------------------------------------------

    def _position_for(self, i0: int) -> None:
        start = self._chunks[0][0] if self._chunks else self._end
        gap = int(_SEEK_GAP_S * self.rate)
        behind = start is not None and i0 < start
        far = (self._end if self._end is not None else 0) + gap < i0
        if self._frames is None:
            # The container was left wherever the video pass ended: always position first.
            self._seek(max(i0 / self.rate - _PREROLL_S, 0.0) if far else 0.0)
        elif behind or far:
            self._seek(max(i0 / self.rate - _PREROLL_S, 0.0))

    def _seek(self, t: float) -> None:
        if not self.tb:
            return
        try:
            self.container.seek(int(t / self.tb), stream=self.stream, backward=True)
        except (av.error.FFmpegError, OverflowError):
            if self._frames is None:
                self._frames = self._decode()
            return  # not seekable: keep decoding forward
        self._chunks, self._end, self._eof = [], None, False
        self._frames = self._decode()

    def _decode(self) -> Iterator[av.AudioFrame]:
        for packet in self.container.demux(self.stream):
            self.deadline.check()
            try:
                frames = self.stream.decode(packet)
            except (av.error.InvalidDataError, av.error.ArgumentError):
                self._errors += 1
                if self._errors > self.policy.max_decode_errors:
                    return
                continue
            except Exception as e:
                raise_media_error(e, "decoding audio")
            yield from frames

    def _fill(self, i0: int, i1: int) -> None:
        snap = int(_SNAP_S * self.rate)
        while not self._eof and (self._end is None or self._end < i1):
            assert self._frames is not None
            frame = next(self._frames, None)
            if frame is None:
                self._eof = True
                break
            if frame.sample_rate != self.rate or frame.samples == 0:
                continue  # mid-stream rate change: treated as a gap
            if frame.pts is not None and self.tb:
                start = round(frame.pts * self._tb_s * self.rate)
                if self._end is not None and abs(start - self._end) <= snap:
                    start = self._end
            else:
                start = self._end if self._end is not None else 0
            self._end = start + frame.samples
            if self._end > i0:  # frames before the span are decoded but never converted
                self._chunks.append((start, to_mono(frame)))
            # Keep memory bounded: frames wholly before this span are never needed again.
            self._chunks = [c for c in self._chunks if c[0] + c[1].size > i0]

    def _extract(self, i0: int, i1: int) -> np.ndarray:
        out = np.zeros(i1 - i0, np.float32)
        for start, data in self._chunks:
            lo, hi = max(start, i0), min(start + data.size, i1)
            if hi > lo:
                out[lo - i0 : hi - i0] = data[lo - start : hi - start]
        return out


def read_audio_windows(
    container: av.container.InputContainer,
    info: MediaInfo,
    policy: MediaPolicy,
    deadline: Deadline,
    spans: Sequence[tuple[float, float]],
    out_rate: int,
    out_samples: int,
) -> tuple[np.ndarray, bool, int]:
    """Mono windows for ``spans`` (zeros without an audio stream), whether they are silent,
    and the corrupt audio packets skipped."""
    if info.audio is None:
        return np.zeros((len(spans), out_samples), np.float32), False, 0
    reader = AudioReader(container, info, policy, deadline)
    windows = reader.windows(spans, out_rate, out_samples)
    audio, silent = silence_to_zeros(windows)
    return audio, silent, reader.decode_errors
