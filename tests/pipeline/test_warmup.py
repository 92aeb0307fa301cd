"""Warm-up runs one real video through the whole classify path before the service is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models import load_package
from service.media import DecodePool, MediaPolicy, probe
from service.metrics import Metrics
from service.pipeline import Pipeline, PipelineConfig
from service.settings import Settings
from service.warmup import WARMUP_SECONDS, warm_up, write_warmup_video
from service.wiring import start_services

from .test_pipeline import DirectInfer


class RecordingDecoder:
    """A real decode pool that remembers which jobs it ran."""

    def __init__(self, pool: DecodePool) -> None:
        self.pool = pool
        self.size = pool.size
        self.calls: list[str] = []

    async def probe(self, path: Path) -> Any:
        self.calls.append("probe")
        return await self.pool.probe(path)

    async def snippets(self, *args: Any) -> Any:
        self.calls.append("snippets")
        return await self.pool.snippets(*args)

    async def clips(self, *args: Any) -> Any:
        self.calls.append("clips")
        return await self.pool.clips(*args)


class RecordingObserver:
    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls += 1

        return record


@dataclass
class Model:
    name: str
    pipeline: Pipeline


def test_warmup_video_has_motion_and_audio(tmp_path: Path) -> None:
    info = probe(write_warmup_video(tmp_path / "w.mp4"), MediaPolicy())
    assert info.duration_s == pytest.approx(WARMUP_SECONDS, abs=0.1)
    assert info.audio is not None and info.audio.sample_rate != 16000  # resampling runs too


async def test_warmup_runs_decode_glance_heavy_and_fusion(tiny_package_dir: Path) -> None:
    package = load_package(tiny_package_dir)
    async with DecodePool(2, MediaPolicy()) as pool:
        decoder = RecordingDecoder(pool)
        infer = DirectInfer(package)
        observer = RecordingObserver()
        pipeline = Pipeline(package, decoder, infer, PipelineConfig(), observer=observer)  # type: ignore[arg-type]
        answers = await warm_up([Model("tiny", pipeline)], decoder)
    # every decode worker probed once, then the whole default (glance) path
    assert decoder.calls == ["probe", "probe", "probe", "snippets", "clips"]
    r = answers["tiny"]
    assert r.policy == "glance" and r.timings_ms["glance_net"] > 0
    assert len(infer.calls) == 1 and r.k == infer.calls[0][0]
    assert r.heads["kinetics"] and r.audio == "present"
    # warm-up is not traffic: the metrics observer saw nothing and is back in place
    assert observer.calls == 0 and pipeline.observer is observer


async def test_services_are_warmed_up_before_they_are_returned(tiny_package_dir: Path) -> None:
    settings = Settings(model_dir=tiny_package_dir, media={"decode_workers": 2})
    metrics = Metrics()
    cold = await start_services(settings, metrics, jobs=False, warmup=False)
    try:
        assert cold.decoder is not None and cold.decoder.stats.jobs == 0
    finally:
        await cold.close(1.0)
    warm = await start_services(settings, metrics, jobs=False)
    try:
        assert warm.decoder is not None
        # 2 worker probes + the pipeline's probe, snippets and clips
        assert warm.decoder.stats.jobs == 5
    finally:
        await warm.close(1.0)
