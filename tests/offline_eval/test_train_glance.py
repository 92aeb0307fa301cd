"""``avserve train glance``: snippet/teacher cache, training, and a servable package."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models import ModelPackage, load_package
from models.glance import GlanceConfig, GlanceNet
from models.package import save_package
from offline.glance.data import GlanceSet
from offline.glance.distill import _batch
from service.glance import GlanceRunner
from service.inline_decoder import InlineDecoder
from service.media import MediaPolicy, probe, read_snippets
from service.media.types import SnippetSpec
from service.pipeline import Pipeline
from service.pipeline_config import PipelineConfig
from service.policies import GlancePolicy, PolicyConfig
from service.schemas import ClassifyOptions

from .conftest import train_glance


def _cache_files(run: Path) -> list[Path]:
    return sorted((run / "cache").rglob("*.npz"))


def test_trained_package_keeps_the_heavy_model_and_serves_the_glance_policy(
    glance_run: Path, heavy_dir: Path, clips_dir: Path
) -> None:
    heavy, package = load_package(heavy_dir), load_package(glance_run / "package")
    assert (
        package.labels == heavy.labels
        and package.config.preprocessing == heavy.config.preprocessing
    )
    for (k, a), (_, b) in zip(
        heavy.model.state_dict().items(), package.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    net = package.glance_model()
    assert isinstance(net, GlanceNet) and net.cfg.num_snippets == 4
    assert net.cfg.heads == heavy.heads
    assert package.config.metadata["glance"]["gmacs_per_video_k4"] > 0
    log = [json.loads(line) for line in (glance_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1] and math.isfinite(log[0]["loss_total"])
    assert 0 <= log[0]["train"]["glance_top1"] <= 1

    pipeline = Pipeline(package, InlineDecoder(), _infer(package), PipelineConfig())
    video = next(clips_dir.glob("*.mp4"))
    r = asyncio.run(pipeline.classify(video, ClassifyOptions(policy="glance", k=2)))
    # A short clip holds one clip window: temporal NMS keeps fewer than K.
    assert r.policy == "glance" and 1 <= r.k <= 2 and r.compute.glance_gmacs > 0
    assert r.heads["kinetics"][0].label in package.labels["kinetics"]


def _infer(package: ModelPackage) -> Any:
    """The heavy model called directly (what the batcher does, minus batching)."""
    model = package.serving_model()

    async def infer(inputs: Mapping[str, np.ndarray], priority: Any, deadline: Any) -> np.ndarray:
        with torch.inference_mode():
            out = model(torch.from_numpy(inputs["frames"]), torch.from_numpy(inputs["audio"]))
        return out.numpy()

    return infer


def test_cached_snippets_are_what_the_glance_policy_decodes(
    glance_run: Path, clips_dir: Path
) -> None:
    runner = GlanceRunner(load_package(glance_run / "package").glance_model())  # type: ignore[arg-type]
    files = _cache_files(glance_run)
    assert len(files) == 4
    for f in files[:2]:
        video = clips_dir / f"{f.stem}.mp4"
        served = read_snippets(
            video, probe(video, MediaPolicy()), runner.snippet_spec, MediaPolicy()
        )
        with np.load(f) as z:
            assert np.array_equal(z["frames"], served.frames)
            assert np.array_equal(z["audio"], served.audio)
            # Teacher targets are heavy-model log-probabilities: <= 0, the video level normalised.
            assert z["teacher_logp"].shape == (4,) and (z["teacher_logp"] <= 0).all()
            assert np.exp(z["teacher_logits"]).sum() == pytest.approx(1.0, abs=1e-4)


def test_a_rerun_reuses_the_cache(
    glance_run: Path, heavy_dir: Path, clips_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    before = {f.name: f.stat().st_mtime_ns for f in _cache_files(glance_run)}
    train_glance(heavy_dir, clips_dir, out, "--cache-dir", str(glance_run / "cache"))
    assert {f.name: f.stat().st_mtime_ns for f in _cache_files(glance_run)} == before
    assert load_package(out / "package").glance_model() is not None


def test_flips_map_labels_and_teacher_classes_together() -> None:
    n, t, c = 6, 3, 4
    rng = np.random.default_rng(0)
    data = GlanceSet(
        frames=rng.integers(0, 255, (n, t, 8, 8, 3), dtype=np.uint8),
        audio=np.zeros((n, t, 10), np.float32),
        audio_present=np.ones(n, bool),
        labels=np.array([0, 1, 2, 3, 0, 1]),
        teacher_logp=np.zeros((n, t), np.float32),
        teacher_logits=rng.normal(size=(n, c)).astype(np.float32),
        files=[str(i) for i in range(n)],
    )
    flip_map = np.array([1, 0, 2, 3])  # classes 0 and 1 are mirror images
    batch = _batch(data, np.arange(n), "kinetics", flip_map, np.random.default_rng(1))
    flipped_any = False
    for i in range(n):
        flipped = not np.array_equal(batch.frames[i].numpy(), data.frames[i])
        flipped_any |= flipped
        want_frames = data.frames[i][:, :, ::-1] if flipped else data.frames[i]
        assert np.array_equal(batch.frames[i].numpy(), want_frames)
        m = flip_map if flipped else np.arange(c)
        assert int(batch.labels["kinetics"][i]) == m[data.labels[i]]
        assert np.array_equal(batch.teacher_logits[i].numpy(), data.teacher_logits[i][m])  # type: ignore[index]
    assert flipped_any


def test_fusion_beta_and_rho_of_the_glance_drive_the_pipeline(
    heavy_dir: Path, tmp_path: Path
) -> None:
    heavy = load_package(heavy_dir)
    cfg = GlanceConfig.tiny(heads=heavy.heads, fusion_beta=0.7, rho=0.8)
    assert GlanceConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).fusion_beta == 0.7
    out = save_package(tmp_path / "p", heavy.model, name="p", version="1", labels=heavy.labels,
                       preprocessing=heavy.config.preprocessing, glance=GlanceNet(cfg))  # fmt: skip
    package = load_package(out)

    def glance_rho(config: PipelineConfig) -> float:
        pipeline = Pipeline(package, InlineDecoder(), _infer(heavy), config)
        policy = pipeline.policies["glance"]
        assert isinstance(policy, GlancePolicy) and pipeline.glance_beta == 0.7
        return policy.rho

    # The patch side the policy was trained for, unless the service configures one.
    assert glance_rho(PipelineConfig()) == 0.8
    assert glance_rho(PipelineConfig(policy=PolicyConfig(rho=0.5))) == 0.5
    with pytest.raises(ValueError, match="fusion_beta"):
        GlanceConfig.tiny(fusion_beta=-1.0)


def test_model_info_states_the_glance_cost_per_video(glance_run: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    result = CliRunner().invoke(
        app, ["model", "info", "--package", str(glance_run / "package"), "--k", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    g = info["glance"]
    assert g["snippets"] == 4 and 0 < g["gmacs"] < g["with_windows_gmacs"]
    assert g["with_windows_gmacs"] == pytest.approx(g["gmacs"] + 2 * info["gmacs"], abs=1e-3)
    assert info["dense30_gmacs"] == pytest.approx(30 * info["gmacs"], abs=1e-3)


def test_a_plain_folder_of_unlabeled_videos_trains_by_distillation_alone(
    tmp_path: Path, heavy_dir: Path, clips_dir: Path
) -> None:
    folder = tmp_path / "videos" / "nested"
    folder.mkdir(parents=True)
    for video in sorted(clips_dir.glob("*.mp4"))[:2]:
        (folder / video.name).write_bytes(video.read_bytes())
    (folder / "notes.txt").write_text("not a video")
    train_glance(heavy_dir, tmp_path / "videos", tmp_path / "run")
    cached = sorted(p.name for p in (tmp_path / "run" / "cache").rglob("*.npz"))
    assert len(cached) == 2 and all(name.startswith("nested__") for name in cached)
    for path in (tmp_path / "run" / "cache").rglob("*.npz"):
        with np.load(path) as z:
            assert int(z["label"]) == -1 and np.isfinite(z["teacher_logp"]).all()
    log = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert math.isfinite(json.loads(log[-1])["loss_total"])
    assert load_package(tmp_path / "run" / "package").glance_model() is not None


def test_teacher_threads_build_the_cache_a_single_thread_builds(
    heavy_dir: Path, clips_dir: Path, tmp_path: Path
) -> None:
    from offline.glance.data import TeacherConfig, build_glance_set

    package, spec = load_package(heavy_dir), SnippetSpec(num_snippets=4, frame_size=32)
    teacher, seen = TeacherConfig(crops=2), []
    one = build_glance_set(clips_dir, package, spec, tmp_path / "one", teacher)
    two = build_glance_set(
        clips_dir, package, spec, tmp_path / "two", teacher, workers=2, on_progress=seen.append
    )
    assert two.files == one.files and sorted(seen) == sorted(one.files)  # each video once
    assert np.array_equal(two.frames, one.frames) and np.array_equal(two.labels, one.labels)
    np.testing.assert_allclose(two.teacher_logp, one.teacher_logp, atol=1e-5)
    np.testing.assert_allclose(two.teacher_logits, one.teacher_logits, atol=1e-5)
    assert torch.get_num_threads() == 1  # the caller's team is untouched (conftest's one thread)


def test_teacher_threads_run_on_one_torch_thread_and_leave_the_default_as_it_was() -> None:
    import threading

    from offline.glance.data import _run_on_threads

    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _run_on_threads(lambda _: seen.append(torch.get_num_threads()), range(4), workers=2)
        later: list[int] = []
        t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert seen == [1, 1, 1, 1] and torch.get_num_threads() == 2 and later == [2]
    finally:
        torch.set_num_threads(before)
