"""Limits applied to untrusted media and URLs (frozen configs; production defaults).

Every limit is checked from container/stream headers *before* frames are decoded, and the
decode loops re-check the budgets that headers cannot promise (decoded frames, wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass

# Demuxers we accept, by FFmpeg short name. Everything else (hls, dash, concat, image2, sdp,
# rtsp, tty, ...) is refused, so no demuxer that opens further URLs or files is reachable.
# Raw H.264/HEVC elementary streams carry no timestamps: they are timed from frame index and
# the bitstream's declared rate (see probe.py).
DEFAULT_FORMATS: tuple[str, ...] = (
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",
    "matroska",
    "webm",
    "avi",
    "mpegts",
    "ogg",
    "flv",
    "wav",
    "mp3",
    "aac",
    "ivf",
    "h264",
    "hevc",
)


@dataclass(frozen=True)
class MediaPolicy:
    """Per-file limits for probing and decoding untrusted media."""

    max_bytes: int = 2 * 1024**3
    max_duration_s: float = 3600.0
    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 4096 * 2304  # DCI 4K plus a margin; also the decoder's max_pixels cap
    max_fps: float = 120.0
    max_streams: int = 16
    max_audio_channels: int = 8
    max_sample_rate: int = 192_000
    max_decoded_frames: int = 20_000  # per job (one probe, snippet or clip request)
    max_output_bytes: int = 1024**3  # decoded arrays one job may return (frames + audio)
    max_wall_s: float = 60.0  # per job, checked inside the decode loops
    open_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    probesize: int = 5_000_000  # bytes FFmpeg may read to identify streams
    analyzeduration: int = 5_000_000  # microseconds of media FFmpeg may analyse
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS
    # A partially corrupt file is used when its decodable frames cover at least this fraction
    # of the duration; otherwise it is `undecodable`.
    min_coverage: float = 0.9
    # Frame rate assumed for streams without usable timestamps when the bitstream declares no
    # plausible rate (e.g. IVF files whose timestamps are all zero).
    fallback_fps: float = 30.0
    decoder_threads: int = 2  # FFmpeg threads per decoder (the pool adds process parallelism)
    max_decode_errors: int = 64  # corrupt packets skipped before a job gives up

    def __post_init__(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError("min_coverage must be in (0, 1]")
        for name in ("max_bytes", "max_width", "max_height", "max_pixels", "max_streams"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and address rules for downloading a user-supplied URL."""

    max_bytes: int = 512 * 1024**2
    timeout_s: float = 30.0  # whole download, DNS included
    max_redirects: int = 3
    # CIDRs exempt from the private/reserved-address block (on-premise deployments, tests).
    allow_private_networks: tuple[str, ...] = ()
    # host or host:port entries exempt from the block (the service settings' test escape hatch).
    allow_hosts: tuple[str, ...] = ()
    chunk_bytes: int = 64 * 1024
    user_agent: str = "avserve-fetch/1"
    ca_bundle: str | None = None  # PEM file of extra trusted CAs (on-premise TLS); None: system
