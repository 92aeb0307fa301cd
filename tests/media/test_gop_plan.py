"""Read planning on synthetic keyframe indexes (pure functions, no media)."""

from __future__ import annotations

import pytest

from service.media.gop_plan import (
    CostModel,
    Read,
    choose_reads,
    describe,
    gop_of,
    plan_reads,
    ref_fraction,
    seek_pays,
)

COST = CostModel(fps=30.0, ref_fraction=0.5, seek_frames=4.0)
EVERY_2S = [2.0 * k for k in range(30)]  # 60 s, a keyframe every 2 s
EVERY_8S = [0.0, 8.0, 16.0, 24.0]  # 32 s, x264's 250-frame GOP at ~30 fps


def test_gop_of_is_the_last_keyframe_at_or_before_the_time() -> None:
    assert [gop_of(EVERY_8S, t) for t in (0.0, 7.99, 8.0, 31.0)] == [0, 0, 1, 3]
    assert gop_of([1.0, 5.0], 0.5) == 0  # before the first keyframe: its GOP


def test_exact_reads_keep_every_instant_sorted() -> None:
    reads = choose_reads([9.0, 1.0, 5.0], EVERY_8S, 0.0)
    assert [(r.instant, r.time_s) for r in reads] == [(1, 1.0), (2, 5.0), (0, 9.0)]
    assert not any(r.keyframe_only or r.moved for r in reads)


def test_tolerant_read_takes_the_nearest_keyframe_within_tolerance() -> None:
    reads = choose_reads([7.5, 8.6, 3.0], EVERY_8S, 1.0)
    by_instant = {r.instant: r for r in reads}
    assert by_instant[0] == Read(0, 8.0, keyframe_only=True)
    assert by_instant[1] == Read(1, 8.0, keyframe_only=True)
    assert not by_instant[2].keyframe_only  # no keyframe within 1 s of 3.0


def test_only_the_last_tolerant_read_of_a_gop_moves_earlier() -> None:
    reads = choose_reads([2.0, 5.0, 11.0], EVERY_8S, 1.0, frame_margin_s=0.1)
    by_instant = {r.instant: r for r in reads}
    assert by_instant[0] == Read(0, 2.0)  # the pass goes past it anyway
    assert by_instant[1] == Read(1, 4.1, moved=True)  # 5.0 - (1.0 - 0.1)
    assert by_instant[2] == Read(2, 10.1, moved=True)  # last (only) read of GOP 1


def test_a_moved_read_never_leaves_its_gop() -> None:
    for t in (0.5, 8.4, 23.0, 31.9):
        (read,) = choose_reads([t], EVERY_8S, 2.0)
        if not read.keyframe_only:
            assert gop_of(EVERY_8S, read.time_s) == gop_of(EVERY_8S, t)
            assert t - 2.0 <= read.time_s <= t


def test_seeking_pays_only_past_the_current_gop_and_beyond_its_fixed_cost() -> None:
    assert seek_pays(None, 16.0, 17.0, COST)  # 16 s of reference frames skipped
    assert not seek_pays(17.5, 16.0, 19.0, COST)  # already inside that GOP
    assert not seek_pays(None, 0.0, 1.0, COST)  # the decoder starts at that keyframe
    assert not seek_pays(15.9, 16.0, 16.5, COST)  # 0.1 s = 1.5 frames < 4 frames of seek
    assert seek_pays(15.0, 16.0, 16.5, COST)  # 1 s = 15 frames > 4


def test_reads_in_one_gop_are_one_pass() -> None:
    reads = choose_reads([8.5, 9.0, 12.0, 15.5], EVERY_8S, 0.0)
    plan = plan_reads(reads, EVERY_8S, 32.0, COST)
    assert len(plan.passes) == 1
    (p,) = plan.passes
    assert (p.gop, p.seek, p.reads, p.first_s, p.last_s) == (1, True, 4, 8.5, 15.5)
    assert plan.strategy == "seek"


def test_short_gops_far_apart_are_reached_by_seeking() -> None:
    reads = choose_reads([10.1, 30.1, 50.1], EVERY_2S, 0.0)
    plan = plan_reads(reads, EVERY_2S, 60.0, COST)
    assert plan.seeks == 3 and plan.strategy == "seek"
    assert plan.frames < 0.05 * plan.full_frames
    assert plan.frames < plan.sequential_frames


def test_one_long_gop_is_read_sequentially() -> None:
    reads = choose_reads([1.0, 4.0, 7.0], [0.0], 0.0)
    plan = plan_reads(reads, [0.0], 10.0, COST)
    assert plan.seeks == 0 and plan.strategy == "sequential"
    assert plan.frames == pytest.approx(plan.sequential_frames)


def test_close_reads_across_a_keyframe_continue_instead_of_seeking() -> None:
    # 1.95 s then 2.05 s: the keyframe at 2.0 is 0.05 s ahead, less than a seek costs
    reads = choose_reads([1.95, 2.05], EVERY_2S, 0.0)
    plan = plan_reads(reads, EVERY_2S, 60.0, COST)
    assert plan.strategy == "sequential" and len(plan.passes) == 2


def test_keyframe_only_reads_cost_one_frame_each() -> None:
    centres = [3.75 * (k + 0.5) for k in range(16)]
    reads = choose_reads(centres, EVERY_2S, 0.25 * 3.75)
    assert all(r.keyframe_only for r in reads)
    plan = plan_reads(reads, EVERY_2S, 60.0, COST)
    assert plan.summary()["frames_est"] == 16
    assert plan.summary()["seeks"] == 16


def test_tolerance_makes_a_long_gop_glance_cheaper_than_exact_reads() -> None:
    centres = [2.0 * (k + 0.5) for k in range(16)]
    exact = plan_reads(choose_reads(centres, EVERY_8S, 0.0), EVERY_8S, 32.0, COST)
    tolerant = plan_reads(choose_reads(centres, EVERY_8S, 0.5), EVERY_8S, 32.0, COST)
    assert tolerant.frames < exact.frames


def test_codecs_without_non_reference_frames_are_costed_in_full() -> None:
    assert ref_fraction("h264") < 1.0 and ref_fraction("hevc") < 1.0
    assert ref_fraction("vp8") == 1.0 and ref_fraction("prores") == 1.0


def test_description_reports_index_plan_and_window_cost() -> None:
    report = describe(EVERY_8S, "container", 32.0, 30.0, "h264")
    assert report["index"] == {
        "source": "container",
        "keyframes": 4,
        "gop_mean_s": 8.0,
        "gop_max_s": 8.0,
    }
    glance = report["glance"]
    assert glance["gops"] == 4 and glance["strategy"] in {"seek", "mixed"}
    assert 0 < glance["frames_est"] < glance["sequential_frames_est"] <= glance["full_frames_est"]
    assert 0 < report["clip_window_frames_est"] < report["full_frames_est"] == 960


def test_description_without_an_index_plans_no_seeks() -> None:
    report = describe(None, "none", 5.0, 30.0, "hevc")
    assert report["strategy"] == "sequential" and report["index"]["keyframes"] == 0
    assert "glance" not in report
