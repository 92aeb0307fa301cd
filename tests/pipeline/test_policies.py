"""The four window policies on real probes, and the heuristic's saliency cues."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import load_package
from service.glance import GlanceRunner
from service.media import MediaPolicy, center_box, probe
from service.media.types import ClipSpec, GlanceSnippets, MediaInfo
from service.policies import (
    DensePolicy,
    Geometry,
    GlancePolicy,
    HeuristicPolicy,
    PlanRequest,
    PolicyConfig,
    UniformPolicy,
)
from service.saliency import heuristic_saliency

GEOM = Geometry(clip=ClipSpec(crop_size=224), short_side=256, test_crop_size=256)


@pytest.fixture(scope="module")
def flower(media_dir: Path) -> MediaInfo:
    return probe(media_dir / "mdn-ie__flower.mp4", MediaPolicy())  # 960x540, 5.05 s


@pytest.fixture(scope="module")
def portrait(media_dir: Path) -> MediaInfo:
    return probe(media_dir / "decord__video_90.mov", MediaPolicy())  # 320x568 after rotation


def synthetic_snippets(info: MediaInfo, hot: int, t: int = 16, seed: int = 0) -> GlanceSnippets:
    """Quiet, static snippets except ``hot``: a loud tone burst and a bright square."""
    rng = np.random.default_rng(seed)
    frames = np.full((t, 64, 64, 3), 60, np.uint8) + rng.integers(
        0, 4, (t, 64, 64, 3), dtype=np.uint8
    )
    frames[hot, 20:44, 20:44] = 250
    audio = rng.normal(0, 0.003, (t, 16000)).astype(np.float32)
    audio[hot, 4000:12000] += 0.5 * np.sin(np.arange(8000) * 2 * np.pi * 880 / 16000)
    times = (np.arange(t) + 0.5) * info.duration_s / t
    return GlanceSnippets(times_s=times, frames=frames, audio=audio, audio_present=True)


def assert_inside(info: MediaInfo, box: list[int] | tuple[int, int, int, int]) -> None:
    x, y, w, h = box
    assert x >= 0 and y >= 0 and w > 0 and h > 0
    assert x + w <= info.video.width and y + h <= info.video.height


def test_uniform_policy_spreads_k_centre_crops_over_the_video(flower: MediaInfo) -> None:
    plan = UniformPolicy().plan(PlanRequest(flower, GEOM, k=3))
    assert len(plan.windows) == 3
    starts = [w.start_s for w in plan.windows]
    assert starts == sorted(starts) and starts[0] >= 0
    assert starts[-1] + GEOM.clip.duration_s <= flower.duration_s + 1e-6
    assert all(w.box == center_box(flower, 256, 224) for w in plan.windows)
    np.testing.assert_allclose(plan.weights, 1 / 3)


def test_dense_policy_is_ten_clips_by_three_crops_at_the_test_crop(portrait: MediaInfo) -> None:
    plan = DensePolicy().plan(PlanRequest(portrait, GEOM, k=4))
    assert len(plan.windows) == 30 and plan.dense and plan.crop_size == 256
    boxes = {w.box for w in plan.windows}
    assert len(boxes) == 3  # top / centre / bottom along the long (vertical) side
    for b in boxes:
        assert_inside(portrait, b.as_list())
        assert b.w == b.h == min(portrait.video.width, portrait.video.height)
    assert all(w.start_tolerance_s == 0.0 for w in plan.windows)  # the protocol's exact views


@pytest.mark.parametrize("snap", [0.0, 0.25])
def test_selected_windows_may_move_by_the_configured_share_of_a_clip(
    flower: MediaInfo, snap: float
) -> None:
    snippets = synthetic_snippets(flower, hot=5)
    plan = HeuristicPolicy(PolicyConfig(window_snap=snap)).plan(
        PlanRequest(flower, GEOM, k=2, snippets=snippets)
    )
    assert plan.windows
    for w in plan.windows:
        assert w.start_tolerance_s == pytest.approx(snap * GEOM.clip.duration_s)


def test_heuristic_policy_picks_the_loud_bright_snippet_first(flower: MediaInfo) -> None:
    snippets = synthetic_snippets(flower, hot=11)
    sal = heuristic_saliency(snippets)
    assert int(np.argmax(sal)) == 11
    plan = HeuristicPolicy(PolicyConfig()).plan(PlanRequest(flower, GEOM, k=2, snippets=snippets))
    centre = plan.windows[0].start_s + GEOM.clip.duration_s / 2
    hot_time = snippets.times_s[11]
    # The first window holds the hot instant (clamping may shift it near the end).
    assert plan.windows[0].start_s <= hot_time <= plan.windows[0].start_s + GEOM.clip.duration_s
    assert abs(centre - hot_time) <= GEOM.clip.duration_s / 2 + 1e-6
    assert plan.weights[0] > plan.weights[1] and plan.weights.sum() == pytest.approx(1.0)


def test_heuristic_ignores_audio_when_the_file_has_none(flower: MediaInfo) -> None:
    snippets = synthetic_snippets(flower, hot=3)
    with_audio = heuristic_saliency(snippets)
    snippets.audio_present = False  # the buffer holds a tone, but the file has no audio stream
    without = heuristic_saliency(snippets)
    silent = GlanceSnippets(snippets.times_s, snippets.frames, np.zeros_like(snippets.audio), True)
    np.testing.assert_allclose(without, heuristic_saliency(silent))
    assert without[3] < with_audio[3]


def test_silent_static_video_gives_flat_saliency(flower: MediaInfo) -> None:
    t = 16
    snippets = GlanceSnippets(
        times_s=np.arange(t) + 0.5,
        frames=np.full((t, 32, 32, 3), 9, np.uint8),
        audio=np.zeros((t, 16000), np.float32),
        audio_present=True,
    )
    assert np.allclose(heuristic_saliency(snippets), 0.0)


@pytest.fixture(scope="module")
def runner(tiny_package_dir: Path) -> GlanceRunner:
    net = load_package(tiny_package_dir).glance_model()
    assert net is not None
    return GlanceRunner(net)


class TestGlancePolicy:
    def snippets(self, runner: GlanceRunner, info: MediaInfo) -> GlanceSnippets:
        spec = runner.snippet_spec
        rng = np.random.default_rng(3)
        t = spec.num_snippets
        return GlanceSnippets(
            times_s=(np.arange(t) + 0.5) * info.duration_s / t,
            frames=rng.integers(0, 256, (t, spec.frame_size, spec.frame_size, 3), dtype=np.uint8),
            audio=rng.normal(0, 0.1, (t, spec.audio_samples)).astype(np.float32),
            audio_present=True,
        )

    def test_windows_follow_saliency_and_patches_stay_inside_any_frame(
        self, runner: GlanceRunner, flower: MediaInfo, portrait: MediaInfo
    ) -> None:
        for info in (flower, portrait):
            snippets = self.snippets(runner, info)
            plan = GlancePolicy(PolicyConfig(), runner).plan(
                PlanRequest(info, GEOM, k=3, snippets=snippets)
            )
            assert 1 <= len(plan.windows) <= 3
            assert plan.glance_logits is not None and plan.saliency is not None
            assert list(plan.saliency) == sorted(plan.saliency, reverse=True)
            for w in plan.windows:
                assert_inside(info, w.box.as_list())
                assert w.box.w == w.box.h == round(0.6 * min(info.video.width, info.video.height))

    def test_glance_is_deterministic(self, runner: GlanceRunner, flower: MediaInfo) -> None:
        snippets = self.snippets(runner, flower)
        policy = GlancePolicy(PolicyConfig(), runner)
        a = policy.plan(PlanRequest(flower, GEOM, k=3, snippets=snippets))
        b = policy.plan(PlanRequest(flower, GEOM, k=3, snippets=snippets))
        assert a.windows == b.windows
        np.testing.assert_array_equal(a.weights, b.weights)

    @pytest.mark.parametrize("exit_k", [0, 1])
    def test_confident_glance_exits_early(
        self, runner: GlanceRunner, flower: MediaInfo, exit_k: int
    ) -> None:
        cfg = PolicyConfig(early_exit_threshold=0.0, early_exit_k=exit_k)  # always confident
        plan = GlancePolicy(cfg, runner).plan(
            PlanRequest(flower, GEOM, k=4, snippets=self.snippets(runner, flower))
        )
        assert plan.early_exit
        assert len(plan.windows) == exit_k

    def test_adaptive_k_can_stop_before_k(self, runner: GlanceRunner, flower: MediaInfo) -> None:
        cfg = PolicyConfig(adaptive_mass=1e-9)  # the first window already holds that mass
        plan = GlancePolicy(cfg, runner).plan(
            PlanRequest(flower, GEOM, k=4, snippets=self.snippets(runner, flower))
        )
        assert len(plan.windows) == 1
