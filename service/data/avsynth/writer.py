"""Writing H.264 + AAC MP4 files with PyAV.

The encoders run single-threaded (``threads=1``) and the colour conversion is ours, so the same
input always gives the same bytes; parallelism comes from generating several files at once.
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

    Done here rather than by swscale: swscale picks SIMD paths by buffer alignment, which
    made the encoded bytes depend on the process (same seed, different files).
    """
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32)
    # 2x2 chroma subsampling as an exact integer sum (a float mean's summation order, and so
    # its rounding, depends on memory alignment: encodes then differed between calls)
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


def _yuv_frame(yuv: np.ndarray, width: int, height: int) -> tuple[av.VideoFrame, np.ndarray]:
    """A yuv420p frame over our own zero-padded buffer (returned too: it must outlive the frame).

    libx264 reads a little past the planes it is given; with PyAV-allocated frames that is
    uninitialised heap memory, which made a process's later encodes differ from its first.
    Rows are padded to a multiple of 64 bytes (edge pixels repeated) and the buffer ends with
    zeroed spare rows, so every byte the encoder can touch is defined.
    """
    pw = -(-width // 64) * 64
    buf = np.zeros((height * 3 // 2 + 16, pw), dtype=np.uint8)
    flat, n, cw, ch = yuv.ravel(), width * height, width // 2, height // 2
    y = buf[:height]
    y[:, :width] = flat[:n].reshape(height, width)
    y[:, width:] = y[:, width - 1 : width]
    body = buf[height:].reshape(-1)  # chroma planes, stride pw / 2 each
    for k in range(2):
        src = flat[n + k * ch * cw : n + (k + 1) * ch * cw].reshape(ch, cw)
        dst = body[k * ch * (pw // 2) : (k + 1) * ch * (pw // 2)].reshape(ch, pw // 2)
        dst[:, :cw] = src
        dst[:, cw:] = src[:, -1:]
    frame = av.VideoFrame.from_numpy_buffer(buf[: height * 3 // 2], format="yuv420p", width=width)
    return frame, buf


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
            frame, _keep = _yuv_frame(rgb_to_yuv420p(rgb), width, height)
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
