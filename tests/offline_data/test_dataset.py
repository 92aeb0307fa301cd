"""The decoded clip cache and the training / evaluation batches built from it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from offline.data.avsynth import generate_clip
from offline.data.avsynth.classes import class_by_name
from offline.data.avsynth.generate import read_manifest
from offline.data.cache import CacheConfig, ClipCache, build_cache
from offline.data.dataset import ClipBatches, SamplingConfig

from .conftest import write_long_set

SAMPLING = SamplingConfig(num_frames=16, sampling_rate=2, crop_size=48)
CACHE = CacheConfig(side=56, grid_fps=15.0)


@pytest.fixture(scope="module")
def cache(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> ClipCache:
    return build_cache(tiny_set, tmp_path_factory.mktemp("cache"), CACHE)


def test_cache_holds_the_centre_square_on_the_time_grid(tiny_set: Path, cache: ClipCache) -> None:
    rec = read_manifest(tiny_set)[3]
    frames = cache.clip_frames(3)
    assert frames.shape == (int(np.ceil(rec["duration_s"] * 15 - 1e-6)), 56, 56, 3)
    raw = generate_clip(rec["seed"])
    w, h = rec["width"], rec["height"]
    s = min(w, h)
    idx = np.round(np.arange(len(frames)) / 15 * raw.fps).astype(int).clip(0, len(raw.frames) - 1)
    centre = raw.frames[idx, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    small = torch.nn.functional.interpolate(
        torch.from_numpy(centre).permute(0, 3, 1, 2).float(), size=(56, 56), antialias=True,
        mode="bilinear",
    ).permute(0, 2, 3, 1).numpy()  # fmt: skip
    assert np.abs(frames.astype(np.float32) - small).mean() < 6  # H.264 loss only


def test_cache_audio_is_the_16k_mono_soundtrack(tiny_set: Path, cache: ClipCache) -> None:
    rec = read_manifest(tiny_set)[1]
    raw = generate_clip(rec["seed"])
    audio = cache.clip_audio(1)
    assert len(audio) == round(rec["duration_s"] * 16000)

    # compare band-limited energy envelopes (robust to resampling and AAC)
    def env(x, sr):
        return np.sqrt(
            np.mean(x[: len(x) // (sr // 20) * (sr // 20)].reshape(-1, sr // 20) ** 2, axis=1)
        )

    a, b = env(np.asarray(audio), 16000), env(raw.audio, raw.sample_rate)
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.98


def test_cache_is_reused_when_up_to_date(tiny_set: Path, cache: ClipCache, tmp_path: Path) -> None:
    root = tmp_path / "c"
    build_cache(tiny_set, root, CACHE)
    stamp = os.stat(root / "frames.npy").st_mtime_ns
    build_cache(tiny_set, root, CACHE)
    assert os.stat(root / "frames.npy").st_mtime_ns == stamp


def test_train_batches_have_the_trainer_contract(cache: ClipCache) -> None:
    batches = ClipBatches(cache, SAMPLING, batch_size=4, train=True, negatives=True)
    assert len(batches) == 2  # 10 clips, drop_last
    batch = next(iter(batches))
    assert batch["frames"].shape == (4, 16, 48, 48, 3) and batch["frames"].dtype == torch.uint8
    assert batch["audio"].shape == (4, SAMPLING.audio_samples)
    assert batch["audio"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64
    assert batch["audio_negative"].shape == batch["audio"].shape
    assert not torch.equal(batch["audio_negative"], batch["audio"])


def test_same_epoch_repeats_and_a_new_epoch_reshuffles(cache: ClipCache) -> None:
    batches = ClipBatches(cache, SAMPLING, batch_size=5, train=True, seed=3)
    first = [b["label"].tolist() for b in batches]
    again = [b["label"].tolist() for b in batches]
    assert first == again
    batches.set_epoch(1)
    frames_e1 = next(iter(batches))["frames"]
    batches.set_epoch(0)
    assert not torch.equal(frames_e1, next(iter(batches))["frames"])


def test_prefetch_builds_the_same_batches_on_one_torch_thread_of_its_own(
    cache: ClipCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    build = ClipBatches._batches

    def spy(self: ClipBatches):  # type: ignore[no-untyped-def]
        seen.append(torch.get_num_threads())
        yield from build(self)

    before = torch.get_num_threads()
    direct = list(ClipBatches(cache, SAMPLING, batch_size=5, train=True, seed=3, prefetch=0))
    monkeypatch.setattr(ClipBatches, "_batches", spy)
    torch.set_num_threads(2)
    try:
        ahead = list(ClipBatches(cache, SAMPLING, batch_size=5, train=True, seed=3, prefetch=2))
        assert seen == [1]  # one OpenMP team in training, not one per thread (issue 11)
        assert torch.get_num_threads() == 2  # the consumer's count is its own
        later: list[int] = []
        probe = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        probe.start()
        probe.join()
        assert later == [2]  # and threads started afterwards do not inherit the producer's 1
    finally:
        torch.set_num_threads(before)
    for a, b in zip(direct, ahead, strict=True):
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["label"], b["label"])


def test_eval_batches_cover_each_clip_once_without_augmentation(cache: ClipCache) -> None:
    batches = ClipBatches(cache, SAMPLING, batch_size=4, train=False)
    labels = torch.cat([b["label"] for b in batches])
    assert labels.tolist() == cache.labels.tolist()  # no flip, no drop
    a = torch.cat([b["frames"] for b in batches])
    b = torch.cat([b["frames"] for b in batches])
    assert torch.equal(a, b)


def test_flip_swaps_direction_labels_and_mirrors_the_pixels(cache: ClipCache) -> None:
    left = class_by_name("slide_left").index
    i = int(np.flatnonzero(cache.labels == left)[0])
    plain = SamplingConfig(**{**SAMPLING.__dict__, "flip_prob": 0.0, "jitter": (1.0, 1.0)})
    flipped = SamplingConfig(**{**SAMPLING.__dict__, "flip_prob": 1.0, "jitter": (1.0, 1.0)})
    a = ClipBatches(cache, plain, batch_size=1).sample(i, torch.Generator().manual_seed(0))
    b = ClipBatches(cache, flipped, batch_size=1).sample(i, torch.Generator().manual_seed(0))
    assert a["label"] == left and b["label"] == class_by_name("slide_right").index
    assert torch.equal(b["frames"], a["frames"].flip(2))  # type: ignore[union-attr]
    ball = int(np.flatnonzero(cache.labels == class_by_name("ball_thud").index)[0])
    assert (
        ClipBatches(cache, flipped, batch_size=1).sample(ball, None)["label"] == cache.labels[ball]
    )


def test_a_corrupt_file_is_a_typed_media_error(tiny_set: Path, tmp_path: Path) -> None:
    from offline.data.cache import decode_window
    from service.errors import MediaError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes((tiny_set / read_manifest(tiny_set)[0]["file"]).read_bytes()[:300])
    with pytest.raises(MediaError):
        decode_window(bad, 0.0, 2.0, (0, 0, 16, 16), CACHE, 4, 100)


@pytest.mark.slow
def test_event_region_caches_the_long_video_event_box_and_window(tmp_path: Path) -> None:
    from offline.data.avsynth.classes import CLASSES

    spec = write_long_set(tmp_path)
    cfg = CacheConfig(side=64, grid_fps=15.0, region="event", event_margin_s=0.5)
    cache = build_cache(tmp_path, tmp_path / "cache", cfg)
    frames = cache.clip_frames(0)
    window = spec.event_end_s - spec.event_start_s + 1.0
    assert len(frames) == int(np.ceil(window * 15 - 1e-6))
    colour = np.array(CLASSES[spec.label].look.colour, dtype=np.float32)
    near = (np.linalg.norm(frames.astype(np.float32) - colour, axis=-1) < 60).mean(axis=(1, 2))
    t = np.arange(len(frames)) / 15 - 0.5  # seconds from the event start
    during = (t > 0.2) & (t < window - 1.0 - 0.2)
    assert near[during].min() > 0.03 and near[t < -0.1].max() < 0.005


def test_cache_is_rebuilt_when_a_file_changes(tiny_set: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for f in tiny_set.iterdir():
        if f.is_file():
            (data / f.name).write_bytes(f.read_bytes())
    first = build_cache(data, tmp_path / "c", CACHE)
    before = np.array(first.clip_frames(0))
    a, b = read_manifest(data)[:2]
    (data / a["file"]).write_bytes((tiny_set / b["file"]).read_bytes())  # same name, new content
    after = build_cache(data, tmp_path / "c", CACHE).clip_frames(0)
    assert not np.array_equal(before[: len(after)], np.asarray(after)[: len(before)])
