"""Test media generated with PyAV: frames that tell their own index, audio with known content.

Frame i is split in two uniform halves whose grey levels encode i (left: i // 16, right:
i % 16, in steps of 16), which survives lossy compression and any resize that keeps the halves,
so a test can tell which source frame it got back. Audio is a sine or silence with optional
clicks at known times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def index_frame(i: int, width: int, height: int) -> np.ndarray:
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:, : width // 2] = 8 + 16 * ((i // 16) % 16)
    rgb[:, width // 2 :] = 8 + 16 * (i % 16)
    return rgb


def read_index(rgb: np.ndarray) -> int:
    """Frame index encoded by ``index_frame`` (from the middle of each half)."""
    h, w = rgb.shape[:2]
    left = float(rgb[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean())
    right = float(rgb[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean())
    return 16 * round((left - 8) / 16) + round((right - 8) / 16)


@dataclass(frozen=True)
class AudioSpec:
    rate: int = 48000
    layout: str = "stereo"
    codec: str = "aac"
    freq: float | None = 440.0  # None: silence
    amplitude: float = 0.5
    clicks_s: tuple[float, ...] = ()  # single-sample full-scale impulses at these times
    channel_gains: tuple[float, ...] | None = None  # per channel (default: all 1)


def _audio_block(spec: AudioSpec, start: int, n: int, channels: int) -> np.ndarray:
    t = (start + np.arange(n)) / spec.rate
    mono = (
        spec.amplitude * np.sin(2 * np.pi * spec.freq * t) if spec.freq else np.zeros(n, np.float64)
    )
    for c in spec.clicks_s:
        k = round(c * spec.rate) - start
        if 0 <= k < n:
            mono[k] = 1.0
    gains = spec.channel_gains or (1.0,) * channels
    return np.stack([mono * g for g in gains]).astype(np.float32)


def write_video(
    path: Path,
    *,
    frames: int = 30,
    fps: int = 30,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    gop: int | None = None,
    options: dict[str, str] | None = None,
    times_s: Sequence[float] | None = None,
    audio: AudioSpec | None = None,
    rotation: int | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write a test video; ``times_s`` gives explicit (variable) frame times."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        opts = {"preset": "ultrafast"} if codec == "libx264" else {}
        opts |= options or {}
        vs.codec_context.options = opts
        if gop:
            vs.codec_context.gop_size = gop
        if times_s is not None:
            vs.codec_context.time_base = Fraction(1, 1000)
            vs.time_base = Fraction(1, 1000)
        if rotation is not None:
            vs.set_display_rotation(rotation)
        aus = None
        if audio is not None:
            aus = out.add_stream(audio.codec, rate=audio.rate, layout=audio.layout)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            if times_s is not None:
                frame.pts = round(times_s[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            else:
                frame.pts = i
                frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None and audio is not None:
            duration = (times_s[-1] + 1 / fps) if times_s is not None else frames / fps
            total = round(duration * audio.rate)
            channels = aus.codec_context.channels
            block = aus.codec_context.frame_size or 1024
            for start in range(0, total, block):
                n = min(block, total - start)
                data = _audio_block(audio, start, n, channels)
                if aus.codec_context.format.name == "s16":
                    arr = (np.clip(data, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
                    af = av.AudioFrame.from_ndarray(arr, format="s16", layout=audio.layout)
                else:
                    af = av.AudioFrame.from_ndarray(data, format="fltp", layout=audio.layout)
                af.sample_rate = audio.rate
                af.pts = start
                af.time_base = Fraction(1, audio.rate)
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return path
