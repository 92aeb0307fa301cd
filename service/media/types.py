"""Value types that cross the media boundary (and the decode-pool process boundary).

Times are seconds on the video stream's own clock, starting at 0 for the first frame.
Pixel coordinates are in the *display* frame, i.e. after rotation metadata was applied.
Arrays are plain numpy: they cross the decode-pool boundary as raw buffers (``wire``);
model-side normalisation (float conversion, mean/std, log-mel) happens in ``models.preprocess``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VideoStreamInfo:
    index: int
    codec: str
    width: int  # display width (after rotation)
    height: int  # display height (after rotation)
    coded_width: int
    coded_height: int
    fps: float | None  # average rate; None when the container does not say
    rotation: int  # clockwise degrees applied for display: 0, 90, 180 or 270
    duration_s: float | None
    frames: int | None  # header frame count, when present (not trusted for sampling)
    start_s: float = 0.0  # first frame's time on the container clock
    # "pts": frames are timed by their timestamps; "index": the stream has no usable timestamps
    # (raw elementary streams, all-zero IVF) and frame i is at i / fps.
    timing: str = "pts"
    # Presentation times (s, same clock) of every keyframe, from the container's index or a
    # demux-only scan; None when unknown. Read planning uses it (``service.media.gop_plan``).
    keyframes_s: tuple[float, ...] | None = None


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None
    start_s: float = 0.0  # first sample's time on the container clock


@dataclass(frozen=True)
class StreamSummary:
    """One stream of the file as the demuxer reports it (for ``avserve probe`` and logs)."""

    index: int
    kind: str  # "video", "audio", "subtitle", "data", ...
    codec: str | None
    default: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    selected: bool = False


@dataclass(frozen=True)
class MediaInfo:
    """What the policy sees after probing, before any frame is decoded."""

    container: str
    size_bytes: int
    duration_s: float  # duration used for sampling (video stream, or estimated from timestamps)
    duration_estimated: bool  # True when no header gave it and it came from packet timestamps
    video: VideoStreamInfo
    audio: AudioStreamInfo | None
    num_streams: int
    streams: tuple[StreamSummary, ...] = ()  # every stream, the chosen ones marked selected
    # How the default glance and one clip window would be read: keyframe index facts, GOPs,
    # seeks, estimated frames decoded, strategy (see ``service.media.gop_plan``).
    decode_plan: dict[str, Any] | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["audio_present"] = self.has_audio
        d["video"].pop("keyframes_s", None)  # summarised in decode_plan
        return d


@dataclass(frozen=True)
class CropBox:
    """Axis-aligned box in display pixels of the source video. Always inside the frame."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class ClipWindow:
    """A request for one AVSlowFast clip: where it starts and which box to crop from every frame.

    ``start_tolerance_s`` > 0 lets the reader move the start by up to that much so the clip
    begins on a keyframe (nothing decoded before it); 0 keeps the start exact (dense views).
    """

    start_s: float
    box: CropBox
    start_tolerance_s: float = 0.0


@dataclass(frozen=True)
class ClipSpec:
    """How one AVSlowFast input clip is sampled (defaults: the official 4x16 recipe).

    ``num_frames`` Fast frames are taken on a ``target_fps`` time grid every
    ``sampling_rate`` grid steps (nearest decoded frame by timestamp); the crop box is
    resized to ``crop_size`` squared. Audio covers exactly the same span.
    """

    num_frames: int = 32
    sampling_rate: int = 2
    target_fps: float = 30.0
    crop_size: int = 224
    audio_sample_rate: int = 16000

    @property
    def duration_s(self) -> float:
        return self.num_frames * self.sampling_rate / self.target_fps

    @property
    def audio_samples(self) -> int:
        return round(self.duration_s * self.audio_sample_rate)


@dataclass(frozen=True)
class ResolvedWindow:
    """A clip as actually decoded: clamped start/end and the box used."""

    start_s: float
    end_s: float
    box: CropBox
    padded: bool  # frames were repeated because the video is shorter than the clip


@dataclass
class ClipBatch:
    """Decoded clips, ready for ``models.preprocess``.

    frames: uint8 [K, num_frames, crop, crop, 3] RGB
    audio:  float32 [K, audio_samples] mono 16 kHz in [-1, 1]; zeros when the file has no audio
    or when these windows are digitally silent (``audio_silent``, see ``service.media.signals``)
    """

    frames: np.ndarray
    audio: np.ndarray
    windows: list[ResolvedWindow]
    audio_present: bool
    decoded_frames: int = 0  # frames the decoder produced to serve this batch (cost metric)
    audio_silent: bool = False  # an audio stream exists but these windows carry no sound
    decode_errors: int = 0  # corrupt packets skipped (video and audio)
    coverage: float = 1.0  # share of the duration whose frames decode (< 1: truncated/corrupt)


@dataclass(frozen=True)
class SnippetSpec:
    """Glance snippets: T evenly spaced instants, one small frame and ~1 s of audio each."""

    num_snippets: int = 16
    frame_size: int = 160  # frames are squashed (no crop) to frame_size squared
    audio_seconds: float = 1.0
    audio_sample_rate: int = 16000
    # A snippet's frame may come from within ±frame_tolerance × (D / T) of its centre: a
    # keyframe there is used as is, else the earliest such frame when that ends a GOP's pass
    # sooner; 0 = always the nearest frame. (0.5, any frame of the snippet's own segment, reads
    # long-GOP videos cheaper but cost the shipped glance accuracy: see docs/benchmarks.md.)
    frame_tolerance: float = 0.25

    @property
    def audio_samples(self) -> int:
        return round(self.audio_seconds * self.audio_sample_rate)


@dataclass
class GlanceSnippets:
    """times_s: float64 [T] snippet centres; frames: uint8 [T, S, S, 3]; audio: float32 [T, N]."""

    times_s: np.ndarray
    frames: np.ndarray
    audio: np.ndarray
    audio_present: bool
    decoded_frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    audio_silent: bool = False  # an audio stream exists but every snippet is digital silence
    decode_errors: int = 0  # corrupt packets skipped (video and audio)
    coverage: float = 1.0  # share of the duration whose frames decode (< 1: truncated/corrupt)

    @property
    def audio_usable(self) -> bool:
        """Audio the glance should listen to: a stream exists and it is not silent."""
        return self.audio_present and not self.audio_silent
