"""What an answer says besides the scores: audio state, warnings, stages, rounding (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models import ModelPackage, load_package
from service.aggregate import SCORE_DECIMALS
from service.media import DecodePool, MediaPolicy
from service.schemas import ClassifyOptions
from tests.media.synth import AudioSpec, write_video

from .test_pipeline import make


@pytest.fixture(scope="module")
def package(tiny_package_dir: Path) -> ModelPackage:
    return load_package(tiny_package_dir)


@pytest.fixture
async def pool() -> AsyncIterator[DecodePool]:
    async with DecodePool(2, MediaPolicy()) as p:
        yield p


def codes(result: object) -> list[str]:
    return [w.code for w in result.warnings]  # type: ignore[attr-defined]


@pytest.mark.parametrize("policy", ["glance", "heuristic", "uniform"])
async def test_silent_track_is_reported_and_scored_like_no_track(
    package: ModelPackage, pool: DecodePool, tmp_path: Path, policy: str
) -> None:
    silent = write_video(tmp_path / "silent.mp4", frames=90, audio=AudioSpec(freq=None))
    mute = write_video(tmp_path / "mute.mp4", frames=90)
    pipeline, _ = make(package, pool)
    options = ClassifyOptions(policy=policy, k=2)
    a = await pipeline.classify(silent, options)
    b = await pipeline.classify(mute, options)
    assert (a.audio, b.audio) == ("silent", "absent")
    assert "silent_audio" in codes(a) and codes(b) == []
    assert a.heads == b.heads  # the models got exactly what they get without audio


async def test_quiet_but_audible_track_is_present(
    package: ModelPackage, pool: DecodePool, tmp_path: Path
) -> None:
    quiet = write_video(tmp_path / "quiet.mp4", frames=90, audio=AudioSpec(amplitude=0.01))
    silent = write_video(tmp_path / "silent.mp4", frames=90, audio=AudioSpec(freq=None))
    pipeline, _ = make(package, pool)
    a = await pipeline.classify(quiet, ClassifyOptions(policy="glance", k=2))
    b = await pipeline.classify(silent, ClassifyOptions(policy="glance", k=2))
    assert a.audio == "present" and codes(a) == []
    assert a.heads != b.heads


async def test_shared_media_silent_opus_and_real_music(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    # no_duration.webm: Chrome recording with an all-zero Opus track (MANIFEST: peak 0.0)
    r = await pipeline.classify(media_dir / "moviepy__no_duration.webm", ClassifyOptions(k=2))
    assert r.audio == "silent"
    r = await pipeline.classify(media_dir / "moviepy__chaplin.mp4", ClassifyOptions(k=2))
    assert r.audio == "present" and r.warnings == []


async def test_corrupt_packets_are_classified_with_a_warning(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(media_dir / "decord__corrupted.mp4", ClassifyOptions(k=2))
    assert "decode_errors" in codes(r)
    assert r.heads["kinetics"]


async def test_truncated_tail_is_classified_with_a_partial_decode_warning(
    package: ModelPackage, pool: DecodePool, media_dir: Path, tmp_path: Path
) -> None:
    data = (media_dir / "mdn-ie__flower.mp4").read_bytes()  # moov first: the header survives
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.96)])
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(cut, ClassifyOptions(policy="uniform", k=4))
    assert "partial_decode" in codes(r)
    message = next(w.message for w in r.warnings if w.code == "partial_decode")
    assert "% of the video decodes" in message


async def test_dense_says_when_it_ignores_k(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool, dense_chunk=30)
    path = media_dir / "mmaction2__demo.mp4"
    r = await pipeline.classify(path, ClassifyOptions(policy="dense", k=4))
    assert r.k == 30 and "k_ignored" in codes(r)
    assert "k=4" in next(w.message for w in r.warnings if w.code == "k_ignored")
    r = await pipeline.classify(path, ClassifyOptions(policy="dense"))
    assert "k_ignored" not in codes(r)


@pytest.mark.parametrize(
    ("policy", "plan_stage"),
    [("glance", "glance_net"), ("heuristic", "saliency"), ("uniform", None), ("dense", None)],
)
async def test_timings_list_only_the_stages_that_ran(
    package: ModelPackage, pool: DecodePool, media_dir: Path, policy: str, plan_stage: str | None
) -> None:
    pipeline, _ = make(package, pool, dense_chunk=30)
    r = await pipeline.classify(media_dir / "mmaction2__test.avi", ClassifyOptions(policy=policy))
    expected = {"probe", "clip_decode", "heavy_net", "total"}
    if policy in ("glance", "heuristic"):
        expected.add("glance_decode")
    if plan_stage is not None:
        expected.add(plan_stage)
    assert set(r.timings_ms) == expected


async def test_scores_carry_four_decimals(
    package: ModelPackage, pool: DecodePool, media_dir: Path
) -> None:
    pipeline, _ = make(package, pool)
    r = await pipeline.classify(media_dir / "mmaction2__test.avi", ClassifyOptions(top_k=5))
    scores = [s.score for s in r.heads["kinetics"]]
    scores += [w.saliency for w in r.windows or []]
    assert all(s == round(s, SCORE_DECIMALS) for s in scores)
    assert len(r.model_dump_json()) < 3000  # no 17-digit floats
