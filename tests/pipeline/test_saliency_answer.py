"""``return_saliency``: the policy's score of every snippet, for the web page's timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models import ModelPackage, load_package
from service.media import DecodePool, MediaPolicy
from service.schemas import ClassifyOptions

from .test_pipeline import make


@pytest.fixture(scope="module")
def package(tiny_package_dir: Path) -> ModelPackage:
    return load_package(tiny_package_dir)


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    async with DecodePool(2, MediaPolicy()) as p:
        yield p


@pytest.mark.parametrize("policy", ["glance", "heuristic"])
async def test_every_snippet_score_is_returned_and_the_best_snippet_is_looked_at(
    package: ModelPackage, pool: DecodePool, media_dir: Path, policy: str
) -> None:
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(
        media_dir / "mmaction2__test.avi",
        ClassifyOptions(policy=policy, k=2, return_saliency=True),
    )
    assert r.saliency is not None and len(r.saliency) > r.k
    times = [p.t_s for p in r.saliency]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= r.video.duration_s
    best = max(r.saliency, key=lambda p: p.score)
    assert any(w.start_s <= best.t_s <= w.end_s for w in r.windows or [])


async def test_saliency_is_absent_unless_asked_and_for_policies_that_score_nothing(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    video = media_dir / "mmaction2__test.avi"
    plain = await pipeline.classify(video, ClassifyOptions(policy="heuristic", k=1))
    uniform = await pipeline.classify(
        video, ClassifyOptions(policy="uniform", k=1, return_saliency=True)
    )
    assert plain.saliency is None and uniform.saliency is None
