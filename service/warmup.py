"""Warm-up: one real (synthetic) video through the whole classify path before "ready".

The batcher's own warm-up batch only covers the heavy model. A first request also pays for
the decode workers' first imports and codec set-up, the glance network's first run, the
compute accounting (cached per crop size) and the fusion; run once here, it costs the start-up
instead of the first user (issue 14: ~2.7 s for the first request against ~0.4 s after).

The video is generated with PyAV (moving shapes and a tone, so motion, audio decoding and
resampling all run), written to a temporary folder and removed afterwards. Warm-up requests
are not counted in the request metrics.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

from service.schemas import ClassifyOptions, ClassifyResult, Priority

log = logging.getLogger(__name__)

WARMUP_SECONDS = 4.0  # longer than one heavy clip (2.1 s at the 4x16 recipe)
_FPS = 30
_SIZE = (160, 96)  # width, height
_AUDIO_RATE = 44_100  # not the models' 16 kHz: the resampler is part of the path


class _Model(Protocol):
    @property
    def name(self) -> str: ...

    pipeline: Any


class _Probe(Protocol):
    size: int

    async def probe(self, path: Path) -> Any: ...


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class _Quiet:
    """Observer that records nothing (warm-up is not traffic), whatever hooks it is asked for."""

    def __getattr__(self, name: str) -> Any:
        return _ignore

    def observe_verdict(self, model: str, head: str, reason: str | None) -> None:
        pass


def write_warmup_video(path: Path, seconds: float = WARMUP_SECONDS) -> Path:
    """A small H.264 + AAC MP4: a square moving across a gradient, a 440 Hz tone."""
    width, height = _SIZE
    frames = round(seconds * _FPS)
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack(
        [xs * 255 // width, ys * 255 // height, np.full_like(xs, 96)], axis=-1
    ).astype(np.uint8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=_FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast"}
        audio = out.add_stream("aac", rate=_AUDIO_RATE, layout="mono")
        for i in range(frames):
            rgb = background.copy()
            x = (i * 4) % (width - 24)
            rgb[36:60, x : x + 24] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, _FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        total = round(seconds * _AUDIO_RATE)
        block = audio.codec_context.frame_size or 1024
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / _AUDIO_RATE
            samples = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = _AUDIO_RATE, start, Fraction(1, _AUDIO_RATE)
            out.mux(audio.encode(af))
        out.mux(audio.encode())
    return path


async def warm_up(
    models: Iterable[_Model], decoder: _Probe | None, tmp_dir: Path | None = None
) -> dict[str, ClassifyResult]:
    """Classify one synthetic video with every model (its default policy); every decode worker
    probes it first. Returns the warm-up answers by model name."""
    t0 = time.perf_counter()
    answers: dict[str, ClassifyResult] = {}
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="avserve-warmup-") as tmp:
        video = await asyncio.to_thread(write_warmup_video, Path(tmp) / "warmup.mp4")
        if decoder is not None:
            # One probe per worker, concurrently: each holds its worker until it is done, so
            # every process imports PyAV and opens a container once.
            await asyncio.gather(*(decoder.probe(video) for _ in range(decoder.size)))
        for model in models:
            pipeline = model.pipeline
            observer = getattr(pipeline, "observer", None)
            if observer is not None:
                pipeline.observer = _Quiet()
            try:
                answers[model.name] = await pipeline.classify(
                    video, ClassifyOptions(model=model.name), priority=Priority.INTERACTIVE
                )
            finally:
                if observer is not None:
                    pipeline.observer = observer
    log.info(
        "warm-up done in %.2f s (%s)",
        time.perf_counter() - t0,
        ", ".join(f"{n}: {r.policy} k={r.k}" for n, r in answers.items()),
    )
    return answers
