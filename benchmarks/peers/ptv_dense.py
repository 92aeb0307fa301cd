"""PyTorchVideo's documented inference path, dense 10 temporal x 3 spatial views.

What a PyTorchVideo user writes (its hub/tutorial recipe with the multi-view test protocol of
``ConstantClipsPerVideoSampler(clips_per_video=10, augs_per_clip=3)``): ``EncodedVideo`` reads
the file (PyAV, video and audio), each of 10 clip windows is decoded with ``get_clip``, and
its transforms build the views: ``UniformTemporalSubsample`` -> ``ShortSideScale`` ->
``uniform_crop`` at 3 spatial positions. The model is avserve's serving graph of the same
package (``build_runtime``, eager): it normalises, packs pathways and computes the log-mel
itself, so PyTorchVideo's ``Normalize``/pathway packing are left out rather than done twice.
The waveform PyTorchVideo decodes (channel mean, native rate) is resampled linearly to the
model's rate: PyTorchVideo has no audio resampler. Scores: mean softmax over the 30 views.
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms._functional_tensor as _functional_tensor

# pytorchvideo 0.1.5 (the last release) imports a torchvision module that torchvision 0.17
# renamed; the usual fix users apply is to alias the new name before importing it.
sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)

from pytorchvideo.data.encoded_video import EncodedVideo  # noqa: E402
from pytorchvideo.transforms import ShortSideScale, UniformTemporalSubsample  # noqa: E402
from pytorchvideo.transforms.functional import uniform_crop  # noqa: E402

from service.runtime_spec import Runtime  # noqa: E402

CLIPS, CROPS = 10, 3


def _waveform(audio: torch.Tensor | None, native_rate: int, rate: int, samples: int) -> np.ndarray:
    if audio is None or audio.numel() == 0:
        return np.zeros(samples, np.float32)
    n = max(1, round(audio.numel() * rate / native_rate))
    wav = torch.nn.functional.interpolate(audio[None, None].float(), size=n, mode="linear")[0, 0]
    out = np.zeros(samples, np.float32)
    out[: min(n, samples)] = wav[:samples].numpy()
    return out


def classify_dense(path: Path, runtime: Runtime, pre: Any) -> dict[str, Any]:
    """One video the PyTorchVideo way; wall time split into decode+transform and model."""
    t0 = time.perf_counter()
    video = EncodedVideo.from_path(str(path), decode_audio=True, decoder="pyav")
    container = video._container  # only to read the audio rate, which EncodedVideo drops
    native_rate = container.streams.audio[0].rate if container.streams.audio else 16000
    clip_s = Fraction(pre.clip_seconds).limit_denominator(1000)
    step = Fraction(max(Fraction(video.duration) - clip_s, 0), CLIPS)
    subsample = UniformTemporalSubsample(pre.num_frames)
    scale = ShortSideScale(pre.test_crop_size)
    prep_s = model_s = 0.0
    probs = []
    for i in range(CLIPS):
        t1 = time.perf_counter()
        clip = video.get_clip(step * i, step * i + clip_s)
        if clip["video"] is None:
            continue
        frames = scale(subsample(clip["video"]))  # C, T, H, W float 0..255
        views = [uniform_crop(frames, pre.test_crop_size, idx) for idx in range(CROPS)]
        batch = torch.stack(views).permute(0, 2, 3, 4, 1).round().clamp(0, 255).to(torch.uint8)
        wav = _waveform(clip["audio"], native_rate, pre.audio.sample_rate, pre.audio_samples)
        inputs = {"frames": batch.numpy(), "audio": np.repeat(wav[None], CROPS, axis=0)}
        t2 = time.perf_counter()
        logits = runtime.run(inputs)
        t3 = time.perf_counter()
        probs.append(torch.from_numpy(logits).softmax(-1))
        prep_s += t2 - t1
        model_s += t3 - t2
    video.close()
    wall = time.perf_counter() - t0
    mean = torch.cat(probs).mean(0)
    return {
        "wall_s": round(wall, 3),
        "decode_transform_s": round(prep_s, 3),
        "model_s": round(model_s, 3),
        "views": len(probs) * CROPS,
        "top1": int(mean.argmax()),
    }
