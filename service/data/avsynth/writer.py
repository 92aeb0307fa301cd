"""Writing H.264 + AAC MP4 files with PyAV.

The encoders run single-threaded (``threads=1``) so that the same input always gives the same
bytes; parallelism comes from generating several files at once (generate.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AAC_FRAME = 1024  # samples per AAC frame


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    audio: np.ndarray,
    *,
    width: int,
    height: int,
    fps: Fraction,
    sample_rate: int,
    preset: str = "veryfast",
    crf: int = 23,
) -> None:
    """Encode RGB uint8 frames [H, W, 3] and float32 audio [C, N] (C = 1 or 2) into ``path``.

    Frames are consumed lazily so long videos never sit in memory at once.
    """
    if width % 2 or height % 2:
        raise ValueError("yuv420p needs even width and height")
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError("audio must be [channels, samples] with 1 or 2 channels")
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.thread_count = 1
        video.options = {"preset": preset, "crf": str(crf), "threads": "1"}
        sound = out.add_stream("aac", rate=sample_rate, layout=layout)
        sound.codec_context.thread_count = 1
        sound.options = {"aac_coder": "fast"}  # the default two-loop search costs 3x more
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1) / fps
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        pcm = np.ascontiguousarray(np.clip(audio, -1.0, 1.0).astype(np.float32))
        for start in range(0, pcm.shape[1], AAC_FRAME):
            chunk = np.ascontiguousarray(pcm[:, start : start + AAC_FRAME])
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            aframe.sample_rate = sample_rate
            aframe.pts = start
            aframe.time_base = Fraction(1, sample_rate)
            out.mux(sound.encode(aframe))
        out.mux(sound.encode(None))
