"""Probing: what the policy sees before any sampling, and every header check.

Stream choice (deterministic):
- video: among decodable video streams that are not cover art, the one flagged *default*,
  then the largest coded area, then the lowest index;
- audio: among decodable audio streams within the channel/sample-rate limits, the *default*
  one, then the highest sample rate, then the most channels, then the lowest index.

Duration (seconds from the chosen video stream's first frame): the video stream's own
duration when the header has one (containers often report a longer overall duration, e.g.
subtitle tracks), else the container's, else the last packet timestamp from a demux-only scan
(``duration_estimated``).

Streams without usable timestamps (raw H.264/HEVC, IVF with all-zero timestamps) are timed
from the frame index ("index" timing): frame i is at i / fps, where fps is the bitstream's
declared rate when plausible, else ``policy.fallback_fps``; the frame count comes from a
demux-only packet scan.

Rotation comes from the display matrix, which FFmpeg exposes on decoded frames, so the probe
decodes the first frame (that also proves the stream decodes at all).

Keyframe index (``keyframes_s``, for read planning): MP4/MOV sample tables list every packet,
so their keyframe entries are used as they are (shifted from decode to presentation time by
the first keyframe's pts - dts); other containers get a demux-only scan of the video packets
(no decoding, within the job's deadline). ``decode_plan`` summarises what reading the default
glance and one clip window would cost (``service.media.gop_plan.describe``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av

from service.errors import MediaError
from service.media import gop_plan
from service.media.container import (
    Deadline,
    configure_decoder,
    format_names,
    open_input,
    raise_media_error,
)
from service.media.policy import MediaPolicy
from service.media.types import AudioStreamInfo, MediaInfo, StreamSummary, VideoStreamInfo

_TIMING_PACKETS = 32  # packets inspected to decide whether timestamps are usable
_MAX_KEYFRAMES = 20_000  # beyond this (intra-only streams) no index is kept: seeks are cheap
_MOV = {"mov", "mp4"}  # demuxers whose index lists every packet (sample tables)


def probe(path: Path, policy: MediaPolicy) -> MediaInfo:
    """Open, check every limit and describe the chosen streams. Raises MediaError."""
    deadline = Deadline(policy.max_wall_s)
    with open_input(path, policy) as container:
        try:
            return _probe(container, path.stat().st_size, policy, deadline)
        except MediaError:
            raise
        except Exception as e:
            raise_media_error(e, "probing")


def _is_default(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.default)


def _rate(value: Fraction | None) -> float | None:
    return float(value) if value else None


def _summary(stream: av.stream.Stream, selected: set[int]) -> StreamSummary:
    cc = stream.codec_context
    summary = StreamSummary(
        index=stream.index,
        kind=stream.type,
        codec=cc.name if cc is not None else None,
        default=_is_default(stream),
        selected=stream.index in selected,
    )
    if isinstance(stream, av.video.stream.VideoStream) and cc is not None:
        vcc = stream.codec_context
        return replace(summary, width=vcc.width, height=vcc.height, fps=_rate(stream.average_rate))
    if isinstance(stream, av.audio.stream.AudioStream) and cc is not None:
        acc = stream.codec_context
        return replace(summary, sample_rate=acc.sample_rate, channels=acc.channels)
    return summary


def _pick_video(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    art = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
    videos = [s for s in container.streams.video if not s.disposition & art]
    if not videos:
        raise MediaError("the file has no video stream", code="no_video_stream")
    usable = [s for s in videos if s.codec_context is not None]
    if not usable:
        raise MediaError("no decoder for the video codec", code="unsupported_codec")
    return min(
        usable,
        key=lambda s: (
            not _is_default(s),
            -(s.codec_context.width * s.codec_context.height),
            s.index,
        ),
    )


def _pick_audio(
    container: av.container.InputContainer, policy: MediaPolicy
) -> av.audio.stream.AudioStream | None:
    streams = [s for s in container.streams.audio if s.codec_context is not None]
    if not streams:
        return None
    within = [
        s
        for s in streams
        if 0 < s.codec_context.channels <= policy.max_audio_channels
        and 0 < s.codec_context.sample_rate <= policy.max_sample_rate
    ]
    if not within:
        cc = streams[0].codec_context
        raise MediaError(
            f"audio with {cc.channels} channels at {cc.sample_rate} Hz is outside the limits "
            f"({policy.max_audio_channels} channels, {policy.max_sample_rate} Hz)",
            code="too_large",
        )
    return min(
        within,
        key=lambda s: (
            not _is_default(s),
            -s.codec_context.sample_rate,
            -s.codec_context.channels,
            s.index,
        ),
    )


def _check_size(width: int, height: int, policy: MediaPolicy) -> None:
    if width > policy.max_width or height > policy.max_height or width * height > policy.max_pixels:
        raise MediaError(
            f"{width}x{height} video exceeds the limit of {policy.max_width}x{policy.max_height} "
            f"({policy.max_pixels} pixels)",
            code="too_large",
        )


def _plausible(rate: Fraction | None, time_base: Fraction | None, policy: MediaPolicy) -> bool:
    # A "rate" equal to 1/time_base is FFmpeg echoing the clock, not a frame rate.
    if not rate or not 0 < float(rate) <= policy.max_fps:
        return False
    return time_base is None or rate != 1 / time_base


def _unusable(pts: list[int | None]) -> bool:
    """No timestamps at all, or every packet stamped alike (e.g. IVF writers that emit 0)."""
    return all(p is None for p in pts) or (len(pts) > 1 and len(set(pts)) == 1)


@dataclass
class _Scan:
    """What the pass over the video packets found."""

    rotation: int = 0
    frame_width: int = 0
    frame_height: int = 0
    packets: int = 0
    index_timing: bool = False
    complete: bool = False  # every packet was demuxed
    last_end_pts: int | None = None
    min_pts: int | None = None
    keyframes: list[int] = field(default_factory=list)  # pts of keyframe packets demuxed
    key_shift: int | None = None  # pts - dts of the first keyframe (index entries are dts)


def _scan(
    container: av.container.InputContainer,
    vs: av.video.stream.VideoStream,
    policy: MediaPolicy,
    deadline: Deadline,
    *,
    need_end: bool,
) -> _Scan:
    """Decode the first frame (rotation, real size) and inspect packet timestamps.

    Only the first frame is decoded. The remaining packets are demuxed, not decoded, and only
    when the end matters: no duration in the header, or no usable timestamps (frame count).
    """
    scan = _Scan()
    pts: list[int | None] = []
    errors = 0
    got_frame = False
    for packet in container.demux(vs):
        deadline.check()
        if packet.size:
            scan.packets += 1
            if len(pts) < _TIMING_PACKETS:
                pts.append(packet.pts)
                scan.index_timing = _unusable(pts)
            if packet.pts is not None:
                end = packet.pts + (packet.duration or 0)
                scan.last_end_pts = (
                    end if scan.last_end_pts is None else max(scan.last_end_pts, end)
                )
                scan.min_pts = packet.pts if scan.min_pts is None else min(scan.min_pts, packet.pts)
                if packet.is_keyframe and len(scan.keyframes) <= _MAX_KEYFRAMES:
                    scan.keyframes.append(packet.pts)
                    if scan.key_shift is None and packet.dts is not None:
                        scan.key_shift = packet.pts - packet.dts
        if not got_frame:
            try:
                frames = vs.decode(packet)
            except av.error.InvalidDataError:
                errors += 1
                if errors > policy.max_decode_errors:
                    break
                continue
            except Exception as e:
                raise_media_error(e, "decoding the first frame")
            if frames:
                frame = frames[0]
                got_frame = True
                scan.rotation = round(-(frame.rotation or 0) / 90) * 90 % 360
                scan.frame_width, scan.frame_height = frame.width, frame.height
        if got_frame and scan.packets >= _TIMING_PACKETS and not (need_end or scan.index_timing):
            break
    else:
        scan.complete = True
    if not got_frame:
        raise MediaError("no video frame could be decoded", code="undecodable")
    return scan


def _probe(
    container: av.container.InputContainer, size: int, policy: MediaPolicy, deadline: Deadline
) -> MediaInfo:
    streams = list(container.streams)
    if len(streams) > policy.max_streams:
        raise MediaError(
            f"{len(streams)} streams, more than the limit of {policy.max_streams}",
            code="too_large",
        )
    vs = _pick_video(container)
    audio = _pick_audio(container, policy)
    cc = vs.codec_context
    _check_size(cc.width, cc.height, policy)
    avg_fps = _rate(vs.average_rate)
    if avg_fps is not None and avg_fps > policy.max_fps:
        raise MediaError(
            f"{avg_fps:g} fps exceeds the limit of {policy.max_fps:g}", code="too_large"
        )
    tb = vs.time_base
    header_duration = float(vs.duration * tb) if vs.duration and tb and vs.duration > 0 else None
    start_s = float((vs.start_time or 0) * tb) if tb else 0.0
    if header_duration is None and container.duration:
        c_start = (container.start_time or 0) / av.time_base
        from_container = container.duration / av.time_base + c_start - start_s
        header_duration = from_container if from_container > 0 else None
    configure_decoder(vs, policy)

    indexed = _index_covers(container, vs, header_duration)
    scan = _scan(container, vs, policy, deadline, need_end=header_duration is None or not indexed)
    timing = "index" if not tb or scan.index_timing else "pts"
    if timing == "index":
        start_s = 0.0
    elif vs.start_time is None and scan.min_pts is not None and tb:
        start_s = float(scan.min_pts * tb)
    estimated = timing == "index" or header_duration is None

    fps: float | None = avg_fps if avg_fps and avg_fps > 0 else None
    if timing == "index":
        declared = [
            float(r) for r in (vs.guessed_rate, vs.average_rate) if r and _plausible(r, tb, policy)
        ]
        fps = declared[0] if declared else policy.fallback_fps
        duration = scan.packets / fps
    elif header_duration is not None:
        duration = header_duration
    else:
        end_pts = scan.last_end_pts
        duration = float(end_pts * tb) - start_s if end_pts is not None and tb else 0.0
    if duration <= 0:
        duration = 1.0 / (fps or policy.fallback_fps)
    if duration > policy.max_duration_s:
        raise MediaError(
            f"video lasts {duration:.1f} s, more than the limit of {policy.max_duration_s:g} s",
            code="too_long",
        )

    keyframes, source = _keyframes(vs, scan, indexed, timing, start_s)
    plan = gop_plan.describe(keyframes, source, duration, fps or policy.fallback_fps, cc.name)

    # The decoded size can differ from the header (codecs that carry it in-band).
    cw, ch = scan.frame_width, scan.frame_height
    _check_size(cw, ch, policy)
    rotated = scan.rotation in (90, 270)
    video = VideoStreamInfo(
        index=vs.index,
        codec=cc.name,
        width=ch if rotated else cw,
        height=cw if rotated else ch,
        coded_width=cw,
        coded_height=ch,
        fps=fps,
        rotation=scan.rotation,
        duration_s=duration,
        frames=vs.frames or None,
        start_s=start_s,
        timing=timing,
        keyframes_s=keyframes,
    )
    audio_info = None
    if audio is not None:
        acc = audio.codec_context
        atb = audio.time_base
        audio_info = AudioStreamInfo(
            index=audio.index,
            codec=acc.name,
            sample_rate=acc.sample_rate,
            channels=acc.channels,
            duration_s=float(audio.duration * atb) if audio.duration and atb else None,
            start_s=float(audio.start_time * atb) if audio.start_time is not None and atb else 0.0,
        )
    selected = {vs.index} | ({audio.index} if audio is not None else set())
    return MediaInfo(
        container=container.format.name,
        size_bytes=size,
        duration_s=duration,
        duration_estimated=estimated,
        video=video,
        audio=audio_info,
        num_streams=len(streams),
        streams=tuple(_summary(s, selected) for s in streams),
        decode_plan=plan,
    )


def _index_covers(
    container: av.container.InputContainer,
    vs: av.video.stream.VideoStream,
    header_duration: float | None,
) -> bool:
    """Whether the container's own index lists every packet of the stream up to its end
    (MP4/MOV sample tables), so no scan is needed for the keyframe index."""

    entries = vs.index_entries
    if not format_names(container) & _MOV or len(entries) < 2 or not vs.time_base:
        return False
    if vs.frames and len(entries) >= vs.frames:
        return True
    end = float((entries[len(entries) - 1].timestamp - (vs.start_time or 0)) * vs.time_base)
    return header_duration is not None and end >= header_duration - 1.0


def _keyframes(
    vs: av.video.stream.VideoStream, scan: _Scan, indexed: bool, timing: str, start_s: float
) -> tuple[tuple[float, ...] | None, str]:
    """Keyframe presentation times (s from the first frame) and where they came from."""
    tb = vs.time_base
    if timing == "index" or not tb:
        return None, "none"  # frames are counted, never sought
    if indexed:
        shift = scan.key_shift or 0  # sample tables hold decode times
        pts = [e.timestamp + shift for e in vs.index_entries if e.is_keyframe]
        source = "container"
    elif scan.complete:
        pts, source = scan.keyframes, "scan"
    else:
        return None, "none"
    if not pts or len(pts) > _MAX_KEYFRAMES:
        return None, "none"
    return tuple(sorted({round(float(p * tb) - start_s, 6) for p in pts})), source
