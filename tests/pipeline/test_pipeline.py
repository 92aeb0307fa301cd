"""The classify pipeline end to end: real files, a real decode pool, a real (tiny) model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from models import ModelPackage, load_package
from models.flops import model_gmacs
from service.errors import AvserveError
from service.inline_decoder import InlineDecoder
from service.media import DecodePool, MediaPolicy
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.pipeline_config import PipelineConfig
from service.schemas import ClassifyOptions, Priority

from .conftest import LABELS


class DirectInfer:
    """The heavy model called directly (what the batcher does, minus batching)."""

    def __init__(self, package: ModelPackage) -> None:
        self.model = package.serving_model().eval()
        self.calls: list[tuple[int, Priority]] = []

    async def __call__(
        self, inputs: Mapping[str, np.ndarray], priority: Priority, deadline: float | None
    ) -> np.ndarray:
        self.calls.append((inputs["frames"].shape[0], priority))
        with torch.inference_mode():
            out = self.model(torch.from_numpy(inputs["frames"]), torch.from_numpy(inputs["audio"]))
        return out.numpy()


@pytest.fixture(scope="module")
def package(tiny_package_dir: Path) -> ModelPackage:
    return load_package(tiny_package_dir)


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    async with DecodePool(2, MediaPolicy()) as p:
        yield p


def make(package: ModelPackage, decoder: object, **cfg: object) -> tuple[Pipeline, DirectInfer]:
    infer = DirectInfer(package)
    return Pipeline(package, decoder, infer, PipelineConfig(**cfg)), infer  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["glance", "heuristic", "uniform"])
async def test_result_reports_what_was_looked_at(
    package: ModelPackage, pool: DecodePool, media_dir: Path, policy: str
) -> None:
    pipeline, infer = make(package, pool)
    r = await pipeline.classify(
        media_dir / "mdn-ie__flower.mp4", ClassifyOptions(policy=policy, k=2, top_k=3)
    )
    assert r.policy == policy and r.model.name == "tiny" and r.model.version == "1"
    assert r.k == len(r.windows or []) == 2 and infer.calls == [(2, Priority.INTERACTIVE)]
    scores = r.heads["kinetics"]
    assert [s.label for s in scores] == [LABELS[s.index] for s in scores] and len(scores) == 3
    assert scores[0].score >= scores[1].score >= scores[2].score
    # flower.mp4's AAC track is all zeros: digital silence, not sound
    assert r.audio == "silent" and r.video.width == 960 and r.video.height == 540
    for w in r.windows or []:
        assert 0 <= w.start_s < w.end_s <= r.video.duration_s + 1e-3
        x, y, bw, bh = w.box
        assert x >= 0 and y >= 0 and x + bw <= 960 and y + bh <= 540
    assert sum(w.saliency for w in r.windows or []) == pytest.approx(1.0, abs=1e-3)
    for stage in ("probe", "clip_decode", "heavy_net", "total"):
        assert r.timings_ms[stage] > 0
    if policy != "uniform":
        assert r.timings_ms["glance_decode"] > 0
    crop = package.config.preprocessing.crop_size
    test_crop = package.config.preprocessing.test_crop_size
    clip = model_gmacs(package.model.config, crop=crop)
    assert r.compute.heavy_gmacs == pytest.approx(2 * clip, rel=1e-3)
    assert r.compute.dense30_gmacs == pytest.approx(
        30 * model_gmacs(package.model.config, test_crop), rel=1e-3
    )
    assert (r.compute.glance_gmacs > 0) == (policy == "glance")
    assert r.compute.fraction_of_dense == pytest.approx(
        r.compute.gmacs / r.compute.dense30_gmacs, rel=1e-3
    )


async def test_dense_runs_thirty_views_at_the_test_crop(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, infer = make(package, pool, dense_chunk=6)
    r = await pipeline.classify(media_dir / "mmaction2__demo.mp4", ClassifyOptions(policy="dense"))
    assert r.k == 30 and len(r.windows or []) == 30
    assert [n for n, _ in infer.calls] == [6] * 5  # decoded and classified in bounded chunks
    assert r.compute.fraction_of_dense == pytest.approx(1.0)
    assert r.audio == "absent"
    assert len({tuple(w.box) for w in r.windows or []}) == 3


async def test_video_shorter_than_a_clip_is_padded_and_reported(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(
        media_dir / "decord__video_90.mov", ClassifyOptions(policy="uniform", k=4)
    )
    assert r.padded and r.k == 1  # 0.1 s: every window collapses onto the one clip
    assert r.video.width == 320 and r.video.height == 568  # rotation applied


async def test_glance_is_refused_for_a_model_without_a_glance(
    no_glance_package_dir: Path, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(load_package(no_glance_package_dir), pool)
    assert pipeline.default_policy == "heuristic"
    with pytest.raises(AvserveError) as err:
        await pipeline.classify(media_dir / "mdn-ie__flower.mp4", ClassifyOptions(policy="glance"))
    assert err.value.code == "invalid_request"


async def test_default_policy_is_glance_when_the_package_has_one(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(media_dir / "mmaction2__test.avi", ClassifyOptions())
    assert r.policy == "glance" and r.k == 4


async def test_glance_patches_have_the_packages_served_side(
    tiny_package_dir: Path, tmp_path: Path, media_dir: Path
) -> None:
    import shutil

    from models.package_edit import set_glance_patch_rho

    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_package_dir, pkg)
    video = media_dir / "mmaction2__test.avi"
    sides = {}
    for rho in (None, 1.0):
        if rho is not None:
            set_glance_patch_rho(pkg, rho)
        pipeline, _ = make(load_package(pkg), InlineDecoder())
        r = await pipeline.classify(video, ClassifyOptions(policy="glance", k=2))
        sides[rho] = {(w.box[2], w.box[3]) for w in r.windows}
    short = min(r.video.width, r.video.height)
    assert sides[None] == {(round(0.6 * short),) * 2}  # the network's own rho (tiny: 0.6)
    assert sides[1.0] == {(short, short)}


async def test_audio_only_file_is_a_typed_error(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, infer = make(package, pool)
    with pytest.raises(AvserveError) as err:
        await pipeline.classify(media_dir / "mdn-sa__guitar.ogg", ClassifyOptions())
    assert err.value.code == "no_video_stream" and err.value.http_status == 422
    assert infer.calls == []


async def test_same_video_same_answer_through_pool_and_inline_decoder(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    path = media_dir / "decord__flipping_a_pancake.mkv"
    options = ClassifyOptions(policy="glance", k=3)
    a = await make(package, pool)[0].classify(path, options)
    b = await make(package, InlineDecoder())[0].classify(path, options)
    assert a.windows == b.windows
    assert a.heads == b.heads


async def test_deadline_already_passed_is_refused_before_any_work(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, infer = make(package, pool)
    loop = asyncio.get_running_loop()
    with pytest.raises(AvserveError) as err:
        await pipeline.classify(
            media_dir / "mdn-ie__flower.mp4", ClassifyOptions(), deadline=loop.time() - 1
        )
    assert err.value.code == "deadline_exceeded" and infer.calls == []


async def test_a_decode_timeout_is_counted_as_a_stage_error(
    package: ModelPackage, media_dir: Path
) -> None:
    metrics = Metrics()
    decoder = InlineDecoder(MediaPolicy(max_wall_s=1e-9))  # every decode loop is out of time
    pipeline = Pipeline(package, decoder, DirectInfer(package), PipelineConfig(), observer=metrics)
    with pytest.raises(AvserveError) as err:
        await pipeline.classify(media_dir / "mdn-ie__flower.mp4", ClassifyOptions())
    assert err.value.code == "timeout"
    errors = {
        (s.labels["stage"], s.labels["code"]): s.value
        for fam in metrics.registry.collect()
        if fam.name == "avserve_pipeline_stage_errors"
        for s in fam.samples
        if s.name.endswith("_total")
    }
    assert errors == {("probe", "timeout"): 1}
