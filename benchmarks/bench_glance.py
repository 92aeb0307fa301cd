"""Benchmark of the model front end and the glance network (CPU, eager).

- glance cost: GMACs per video (FlopCounterMode / 2) at T = 16, 32, 64 snippets with K = 4
  located patches, per snippet and per located patch, and parameters;
- glance latency: ``GlanceNet.forward`` on one video (T = 16, 160 px) and ``locate`` for K = 4;
- front end: log-mel of one 2.13 s clip, and ``ClipPreprocessor`` on 1 and 4 clips at 224 px;
- accuracy: max |log-mel - librosa| on real audio (float32 and float64), if librosa is installed.

Run: ``python -m benchmarks.bench_glance`` (or ``make bench``). Writes bench-results/glance.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import machine
from models.features import LogMelConfig, LogMelSpectrogram
from models.glance import GlanceConfig, GlanceNet, glance_cost
from models.preprocess import ClipPreprocessor, PreprocessConfig

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "glance.json"
SHARED = Path(os.environ.get("AVSERVE_SHARED_DIR", REPO.parent / "shared"))
AUDIO_SAMPLE = SHARED / "media" / "decord__flipping_a_pancake.mkv"


def _time_ms(fn: Callable[[], object], repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def glance_costs() -> list[dict[str, Any]]:
    rows = []
    for t in (16, 32, 64):
        c = glance_cost(GlanceConfig(num_snippets=t), k=4)
        rows.append(
            {
                "snippets": t,
                "k": 4,
                "total_gmacs": c.total_gmacs,
                "per_snippet_gmacs": c.per_snippet_gmacs,
                "per_selected_gmacs": c.per_selected_gmacs,
                "params": c.params,
            }
        )
    return rows


def glance_latency() -> dict[str, Any]:
    torch.manual_seed(0)
    cfg = GlanceConfig()
    net = GlanceNet(cfg).eval()
    frames = torch.randint(0, 256, (1, 16, 160, 160, 3), dtype=torch.uint8)
    audio = torch.randn(1, 16, cfg.audio_samples) * 0.1
    with torch.inference_mode():
        out = net(frames, audio)
    idx = torch.tensor([[1, 5, 9, 13]])
    return {
        "forward_t16": _time_ms(lambda: net(frames, audio)),
        "locate_k4": _time_ms(lambda: net.locate(out, idx)),
    }


def front_end_latency() -> dict[str, Any]:
    cfg = PreprocessConfig()
    logmel = LogMelSpectrogram(cfg.audio, normalize=True, to_num_frames=True)
    pre = ClipPreprocessor(cfg)
    audio = torch.randn(4, cfg.audio_samples) * 0.1
    frames = torch.randint(0, 256, (4, 32, 224, 224, 3), dtype=torch.uint8)
    return {
        "logmel_1_clip": _time_ms(lambda: logmel(audio[:1]), repeats=20),
        "preprocess_1_clip_224": _time_ms(lambda: pre(frames[:1], audio[:1])),
        "preprocess_4_clips_224": _time_ms(lambda: pre(frames, audio)),
    }


def librosa_parity() -> dict[str, Any]:
    try:
        import av
        import librosa
        import numpy as np
    except ImportError as exc:
        return {"skipped": str(exc)}
    if not AUDIO_SAMPLE.exists():
        return {"skipped": f"{AUDIO_SAMPLE} not found"}
    chunks = []
    with av.open(str(AUDIO_SAMPLE)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        planar = av.AudioResampler(format="fltp")
        for frame in container.decode(stream):
            chunks += [
                f.to_ndarray().astype(np.float64).mean(axis=0) for f in planar.resample(frame)
            ]
    y = librosa.resample(np.concatenate(chunks), orig_sr=rate, target_sr=16000)
    cfg = LogMelConfig()
    ref = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=256, win_length=512, window="hann", center=False,
        power=2.0, n_mels=80, fmin=0, fmax=8000, htk=True,
    )  # fmt: skip
    ref_log = np.log(ref + cfg.log_offset).T
    f32 = LogMelSpectrogram(cfg)(torch.from_numpy(y).float()[None])[0].numpy()
    f64 = LogMelSpectrogram(cfg).double()(torch.from_numpy(y)[None])[0].numpy()
    return {
        "file": AUDIO_SAMPLE.name,
        "seconds": len(y) / 16000,
        "max_abs_diff_float32": float(np.abs(f32 - ref_log).max()),
        "max_abs_diff_float64": float(np.abs(f64 - ref_log).max()),
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    result: dict[str, Any] = {"machine": machine()}
    result["glance_cost"] = glance_costs()
    result["glance_latency"] = glance_latency()
    result["front_end_latency"] = front_end_latency()
    result["librosa_parity"] = librosa_parity()

    console = Console()
    cost = Table(title="glance cost per video (K = 4 patches)")
    for col in ("snippets", "GMACs", "per snippet", "per patch", "params"):
        cost.add_column(col, justify="right")
    for r in result["glance_cost"]:
        cost.add_row(
            str(r["snippets"]), f"{r['total_gmacs']:.3f}", f"{r['per_snippet_gmacs']:.4f}",
            f"{r['per_selected_gmacs']:.4f}", f"{r['params'] / 1e6:.2f} M",
        )  # fmt: skip
    console.print(cost)
    lat = Table(title="CPU latency (eager, inference mode)")
    lat.add_column("what")
    lat.add_column("median ms", justify="right")
    lat.add_column("min ms", justify="right")
    for group in ("glance_latency", "front_end_latency"):
        for name, t in result[group].items():
            lat.add_row(name, f"{t['median_ms']:.1f}", f"{t['min_ms']:.1f}")
    console.print(lat)
    console.print("librosa parity:", result["librosa_parity"])
    console.print("machine:", result["machine"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
