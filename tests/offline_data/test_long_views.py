"""Training items cut from long videos as serving shows them, and caches mixed for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline.data.avsynth.generate import BACKGROUND_LABEL
from offline.data.cache import CacheConfig, CacheUnion, ClipCache, build_cache
from offline.data.dataset import ClipBatches, SamplingConfig
from offline.data.long_views import MODEL_WINDOW_S, edge_items, view_items

from .conftest import write_long_set

RECORD = {
    "file": "long-train-000000.mp4", "index": 0, "seed": 12345, "label": 3, "width": 320,
    "height": 180, "duration_s": 40.0, "event_start_s": 20.0, "event_end_s": 22.0,
    "event_box": [200, 60, 90, 90],
}  # fmt: skip


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def test_event_views_hold_the_event_box_at_each_serving_scale() -> None:
    cfg = CacheConfig(region="views", view_sides=(0.8, 1.0), view_margin_s=0.8, partial_views=False)
    items = view_items(RECORD, cfg)
    positives = [it for it in items if it[3] == 3]
    assert [box[2] for _, _, box, _ in positives] == [144, 180]  # 0.8 and 1.0 x short side
    for _, (t0, t1), box, _ in positives:
        assert (t0, t1) == pytest.approx((19.2, 22.8))
        assert _inside((200, 60, 90, 90), box) and _inside(box, (0, 0, 320, 180))
    # the shortest event (2 s) still fills >= 60% of any model window inside the stretch
    for start in np.linspace(19.2, 22.8 - MODEL_WINDOW_S, 41):
        overlap = min(22.0, start + MODEL_WINDOW_S) - max(20.0, start)
        assert overlap / MODEL_WINDOW_S >= 0.6


def test_partial_views_are_the_dense_crops_and_a_patch_that_hold_half_the_event_box() -> None:
    items = view_items(RECORD, CacheConfig(region="views", background_views=0))
    squares = [box for *_, box, _ in items]
    assert all(label == 3 for *_, label in items)
    # the event box (200..290 of 320 px) is wholly in the centre and right dense crops only
    assert (70, 0, 180, 180) in squares and (140, 0, 180, 180) in squares
    assert (0, 0, 180, 180) not in squares
    patches = [sq for sq in squares[2:] if sq[2] == 144]
    assert len(patches) == 1
    x, y, s, _ = patches[0]
    inside = (min(x + s, 290) - max(x, 200)) * (min(y + s, 150) - max(y, 60))
    assert 0.5 * 90 * 90 <= inside < 90 * 90


def test_edge_views_catch_only_the_start_or_the_end_of_the_event() -> None:
    cfg = CacheConfig(region="views", partial_views=False, background_views=0, edge_views=40)
    items = view_items(RECORD, cfg)[2:]  # after the two whole-event views
    assert len(items) == 40 and {label for *_, label in items} == {3}
    ends = []
    for _, (t0, t1), box, _ in items:
        assert t1 - t0 == pytest.approx(MODEL_WINDOW_S + 0.2)
        assert _inside((200, 60, 90, 90), box) and _inside(box, (0, 0, 320, 180))
        for start in (t0, t1 - MODEL_WINDOW_S):  # any window the sampler can take
            overlap = min(22.0, start + MODEL_WINDOW_S) - max(20.0, start)
            assert 0.15 <= overlap / MODEL_WINDOW_S <= 0.65
        assert (t0 < 20.0 < t1) != (t0 < 22.0 < t1)  # it crosses exactly one edge
        ends.append(t1 > 22.0)
    assert ends == [k % 2 == 1 for k in range(40)]  # starts and ends alternately


def test_edge_views_stay_in_a_video_whose_event_is_near_its_start() -> None:
    rec = {**RECORD, "event_start_s": 0.3, "event_end_s": 2.3}
    cfg = CacheConfig(region="views", partial_views=False, background_views=0, edge_views=4)
    for _, (t0, t1), _, _ in view_items(rec, cfg)[2:]:
        assert t0 >= 0.0 and t1 <= 40.0


def test_background_views_never_touch_the_event_and_stay_in_the_frame() -> None:
    cfg = CacheConfig(region="views", background_views=50)
    items = view_items(RECORD, cfg)
    background = [it for it in items if it[3] == BACKGROUND_LABEL]
    assert len(background) == 50
    for _, (t0, t1), box, _ in background:
        assert t1 <= 20.0 or t0 >= 22.0
        assert t0 >= 0.0 and t1 <= 40.0 and t1 - t0 > MODEL_WINDOW_S
        assert _inside(box, (0, 0, 320, 180))
    starts = [t0 for _, (t0, _), _, _ in background]
    assert min(starts) < 20.0 < max(starts)  # both sides of the event are used


def test_view_placement_is_a_function_of_the_video() -> None:
    cfg = CacheConfig(region="views")
    assert view_items(RECORD, cfg) == view_items(dict(RECORD), cfg)
    other = view_items({**RECORD, "seed": 7}, cfg)
    assert [it[1:] for it in other] != [it[1:] for it in view_items(RECORD, cfg)]


def test_edge_items_are_exactly_the_edge_views_of_the_views_region() -> None:
    cfg = CacheConfig(region="views", edge_views=4)
    every = view_items(RECORD, cfg)
    no_edges = view_items(RECORD, CacheConfig(region="views"))
    edges = edge_items(RECORD, cfg)
    assert len(edges) == 4 and len(every) == len(no_edges) + 4
    n_event = len(no_edges) - sum(label == BACKGROUND_LABEL for *_, label in no_edges)
    assert every[n_event : n_event + 4] == edges  # the same draws, in the same place
    assert edge_items(RECORD, CacheConfig(region="edges")) == []


def test_a_video_with_no_room_outside_the_event_gives_no_background() -> None:
    rec = {**RECORD, "duration_s": 3.0, "event_start_s": 0.5, "event_end_s": 2.5}
    items = view_items(rec, CacheConfig(region="views", background_views=3))
    assert {label for *_, label in items} == {3}


@pytest.fixture(scope="module")
def short_cache(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> ClipCache:
    return build_cache(tiny_set, tmp_path_factory.mktemp("c"), CacheConfig(side=56))


def test_a_union_reads_each_cache_in_order_with_the_first_ones_classes(
    short_cache: ClipCache,
) -> None:
    union = CacheUnion([short_cache, short_cache])
    n = len(short_cache)
    assert len(union) == 2 * n
    assert np.array_equal(union.labels, np.concatenate([short_cache.labels] * 2))
    assert np.array_equal(union.clip_frames(n + 2), short_cache.clip_frames(2))
    assert np.array_equal(union.clip_audio(n + 1), short_cache.clip_audio(1))
    assert union.class_names == short_cache.class_names
    batch = next(iter(ClipBatches(union, SamplingConfig(num_frames=8, crop_size=48), seed=1)))
    assert batch["frames"].shape == (16, 8, 48, 48, 3)


def test_a_late_cache_sits_out_until_its_epoch_and_epochs_keep_their_length(
    short_cache: ClipCache,
) -> None:
    n = len(short_cache)
    union = CacheUnion([short_cache, short_cache], join_epochs=[0, 2])
    assert list(union.active(1)) == list(range(n)) and len(union.active(2)) == 2 * n
    batches = ClipBatches(union, SamplingConfig(num_frames=8, crop_size=48), batch_size=2, seed=3)
    for epoch, late_seen in ((0, False), (1, False), (2, True)):
        batches.set_epoch(epoch)
        order = batches._order()
        assert len(order) == 2 * n  # same steps per epoch: the LR schedule is per step
        assert any(i >= n for i in order) is late_seen
        assert set(range(n)) <= set(order)  # every active item still trains each epoch
    with pytest.raises(ValueError, match="first cache at 0"):
        CacheUnion([short_cache, short_cache], join_epochs=[1, 0])


def test_a_union_refuses_caches_on_another_grid(
    short_cache: ClipCache, tiny_set: Path, tmp_path: Path
) -> None:
    other = build_cache(tiny_set, tmp_path / "c", CacheConfig(side=48))
    with pytest.raises(ValueError, match="same side"):
        CacheUnion([short_cache, other])


@pytest.mark.slow
def test_views_cache_decodes_event_and_background_items_of_a_long_video(tmp_path: Path) -> None:
    from offline.data.avsynth.classes import CLASSES

    spec = write_long_set(tmp_path)
    cfg = CacheConfig(
        side=64, grid_fps=15.0, region="views", background_views=2, partial_views=False
    )
    cache = build_cache(tmp_path, tmp_path / "cache", cfg)
    assert list(cache.labels) == [spec.label, spec.label, BACKGROUND_LABEL, BACKGROUND_LABEL]
    assert cache.meta["files"] == ["long.mp4"] * 4
    colour = np.array(CLASSES[spec.label].look.colour, dtype=np.float32)

    def share(i: int) -> float:  # pixels of the class colour, per frame, at most
        frames = cache.clip_frames(i).astype(np.float32)
        return float((np.linalg.norm(frames - colour, axis=-1) < 60).mean(axis=(1, 2)).max())

    assert min(share(0), share(1)) > 0.01  # the class object is seen in both event views
    assert max(share(2), share(3)) < 0.005  # and never in the event-free stretches


def test_view_options_leave_other_regions_caches_valid(tiny_set: Path, tmp_path: Path) -> None:
    built = build_cache(tiny_set, tmp_path / "c", CacheConfig(side=40))
    again = build_cache(tiny_set, tmp_path / "c", CacheConfig(side=40, background_views=7))
    assert again.meta["fingerprint"] == built.meta["fingerprint"]
    other = build_cache(tiny_set, tmp_path / "d", CacheConfig(side=40, event_margin_s=0.1))
    assert other.meta["fingerprint"] != built.meta["fingerprint"]
