"""Writing H.264 + AAC MP4 files with PyAV.

The encoders run single-threaded (``threads=1``) and the colour conversion is ours, so the
encoder input is a pure function of the seed. The first file a process encodes is byte-stable
across runs and machines of one kind, but later encodes in the same process were seen to differ
in a few bits (libx264/libavcodec state we could not pin down); the *decoded* content then
differs only by H.264 noise. Parallelism comes from generating several files at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AAC_FRAME = 1024  # samples per AAC frame


# BT.601 limited range, the matrix decoders assume for untagged SD streams.
_Y = np.array([0.256788, 0.504129, 0.097906], dtype=np.float32)
_CB = np.array([-0.148223, -0.290993, 0.439216], dtype=np.float32)
_CR = np.array([0.439216, -0.367788, -0.071427], dtype=np.float32)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> planar yuv420p [H * 3 / 2, W] (PyAV's ndarray layout).

    Done here rather than by swscale so that the encoder's input is a plain function of the
    pixels (swscale's SIMD paths are chosen at run time).
    """
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32)
    # 2x2 chroma subsampling as an exact integer sum (no float summation order to depend on)
    q = rgb.reshape(h // 2, 2, w // 2, 2, 3).astype(np.int32)
    quad = (q[:, 0, :, 0] + q[:, 0, :, 1] + q[:, 1, :, 0] + q[:, 1, :, 1]).astype(np.float32) / 4

    def mix(img: np.ndarray, m: np.ndarray) -> np.ndarray:
        # elementwise, not a matmul: BLAS kernels (and so rounding) vary with the process
        return img[..., 0] * m[0] + img[..., 1] * m[1] + img[..., 2] * m[2]

    y = 16.0 + mix(x, _Y)
    cb = 128.0 + mix(quad, _CB)
    cr = 128.0 + mix(quad, _CR)
    planes = np.concatenate([y.ravel(), cb.ravel(), cr.ravel()])
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


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
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
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
