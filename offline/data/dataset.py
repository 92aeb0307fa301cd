"""Training / evaluation batches from a decoded clip cache (AVSynth sets and user sources).

``ClipBatches`` yields ``{"frames": uint8 [B,T,S,S,3], "audio": float32 [B,N], "label": int64 [B]}``
(+ ``"audio_negative"`` when asked), the contract of ``offline.train.Trainer``. A multi-label
cache (``ClipCache.multi_hot``) yields ``"label"`` as float32 multi-hot targets [B, C].

Training samples a random window on the cache's time grid and the paper's spatial augmentation
(short-side scale jitter + random crop, as a box; ``offline.train.augment``), then flips
horizontally with probability ``flip_prob``. **A flip mirrors motion**: for direction-defined
classes (AVSynth ``slide_left`` / ``slide_right``) the label is swapped through the set's
``flip_label_map`` (labels.json), which keeps the flip a valid augmentation (and doubles the
direction data) instead of teaching the model that left and right look alike. Sets without a
map get flips with unchanged labels (``flip_prob=0`` disables them).

Evaluation takes each clip once: the centred window and the whole cached square resized to the
crop (the full short-side view), no flip.

Batches are built in a background thread (torch ops release the GIL) so they overlap training.
That thread runs its torch ops on one intra-op thread: with OpenMP every OS thread that runs
torch ops gets a team of its own, and two teams' spinning workers on the same cores slow the
training step (the serving side's reason for one model thread, ``service.executor``). The
batches are the same whatever the thread count.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from offline.data.cache import ClipSource
from offline.train.augment import Box, crop_resize, flip_label, random_crop_box, random_flip


@dataclass(frozen=True)
class SamplingConfig:
    """How a model clip is taken from the cache (defaults: 32 frames, stride 2 at 30 fps)."""

    num_frames: int = 32
    sampling_rate: int = 2
    target_fps: float = 30.0
    crop_size: int = 112
    audio_sample_rate: int = 16000
    # paper: short side jittered in [256, 320] for 224 crops -> [8/7, 10/7] x crop
    jitter: tuple[float, float] = (256 / 224, 320 / 224)
    flip_prob: float = 0.5
    negative_min_gap_s: float = 0.5  # AV-sync negatives start at least this far away
    # Share of training clips whose audio is replaced by digital silence, as the service feeds a
    # video without an audio track: the model learns an honest no-audio posterior (classes that
    # only sound tells apart stay undecided) instead of guessing from the picture.
    audio_drop_prob: float = 0.0

    @property
    def clip_seconds(self) -> float:
        return self.num_frames * self.sampling_rate / self.target_fps

    @property
    def audio_samples(self) -> int:
        return round(self.clip_seconds * self.audio_sample_rate)


def _labels(items: list[torch.Tensor | int]) -> torch.Tensor:
    """int64 [B] class indices, or float32 [B, C] multi-hot targets (multi-label sets)."""
    if items and isinstance(items[0], torch.Tensor):
        return torch.stack(items)  # type: ignore[arg-type]
    return torch.tensor(items, dtype=torch.int64)


class ClipBatches:
    """Iterable of batches over a cache (or a ``CacheUnion``); ``set_epoch`` reseeds them."""

    def __init__(
        self,
        cache: ClipSource,
        sampling: SamplingConfig = SamplingConfig(),
        *,
        batch_size: int = 16,
        train: bool = True,
        seed: int = 0,
        negatives: bool = False,
        drop_last: bool | None = None,
        prefetch: int = 2,
    ) -> None:
        if batch_size <= 0 or len(cache) == 0:
            raise ValueError("need batch_size > 0 and a non-empty cache")
        cfg = cache.config
        if cfg.audio_sample_rate != sampling.audio_sample_rate:
            raise ValueError("cache and sampling audio rates differ")
        self.cache, self.s = cache, sampling
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.negatives = negatives
        self.drop_last = train if drop_last is None else drop_last
        self.prefetch = prefetch
        self.epoch = 0
        # cache grid steps between two model frames (1 when the cache is on the model's grid)
        self.step = cfg.grid_fps * sampling.sampling_rate / sampling.target_fps

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.cache)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # ---- one sample -------------------------------------------------------------------------
    def _frame_index(self, start: float, count: int) -> np.ndarray:
        idx = np.round(start + np.arange(self.s.num_frames) * self.step).astype(np.int64)
        return np.minimum(idx, count - 1)  # clips shorter than a window repeat their last frame

    def _audio_window(self, i: int, start_s: float) -> np.ndarray:
        wave = self.cache.clip_audio(i)
        n = self.s.audio_samples
        a = round(start_s * self.s.audio_sample_rate)
        out = np.zeros(n, dtype=np.float32)
        piece = wave[a : a + n]
        out[: len(piece)] = piece
        return out

    def sample(self, i: int, gen: torch.Generator | None) -> dict[str, torch.Tensor | int]:
        """One clip: random (train) or centred (eval) window and box."""
        frames = self.cache.clip_frames(i)
        count, side = len(frames), frames.shape[1]
        span = (self.s.num_frames - 1) * self.step + 1
        latest = max(0, int(count - math.ceil(span)))
        if self.train:
            start = int(torch.randint(0, latest + 1, (1,), generator=gen))
            lo, hi = (round(self.s.crop_size * j) for j in self.s.jitter)
            box = random_crop_box(side, side, self.s.crop_size, (lo, hi), gen)
            flip = random_flip(self.s.flip_prob, gen)
        else:
            start, box, flip = latest // 2, Box(0, 0, side, side), False
        clip = torch.from_numpy(np.ascontiguousarray(frames[self._frame_index(start, count)]))
        label = int(self.cache.labels[i])
        start_s = start / self.cache.config.grid_fps
        audio = self._audio_window(i, start_s)
        drop = self.train and self.s.audio_drop_prob > 0
        if drop and float(torch.rand((), generator=gen)) < self.s.audio_drop_prob:
            audio = np.zeros_like(audio)
        out: dict[str, torch.Tensor | int] = {
            "frames": crop_resize(clip, box, self.s.crop_size, flip),
            "audio": torch.from_numpy(audio),
            "label": flip_label(label, self.cache.flip_map) if flip else label,
        }
        if self.cache.multi_hot is not None:  # multi-label sets carry no flip map
            out["label"] = torch.from_numpy(self.cache.multi_hot[i].astype(np.float32))
        if self.negatives:
            out["audio_negative"] = torch.from_numpy(self._negative(i, start_s, gen))
        return out

    def _negative(self, i: int, start_s: float, gen: torch.Generator | None) -> np.ndarray:
        """Misaligned audio: same clip >= min gap away when it fits, else another clip's audio."""
        dur = len(self.cache.clip_audio(i)) / self.s.audio_sample_rate
        latest = max(0.0, dur - self.s.clip_seconds)
        gap = self.s.negative_min_gap_s
        options = [s for s in np.arange(0.0, latest + 1e-9, 0.1) if abs(s - start_s) >= gap]
        if options:
            pick = options[int(torch.randint(0, len(options), (1,), generator=gen))]
            return self._audio_window(i, float(pick))
        other = (i + 1 + int(torch.randint(0, len(self.cache) - 1, (1,), generator=gen))) % len(
            self.cache
        )
        return self._audio_window(other, 0.0)

    # ---- batches ----------------------------------------------------------------------------
    def _order(self) -> list[int]:
        n = len(self.cache)
        if not self.train:
            return list(range(n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        active = getattr(self.cache, "active", None)
        pool = None if active is None else np.asarray(active(self.epoch))
        if pool is None or len(pool) == n:
            return torch.randperm(n, generator=g).tolist()
        # a curriculum: items whose cache joins later sit out, and their slots go to redraws of
        # the active ones, so every epoch has the same steps (the LR schedule is per step)
        ids = torch.from_numpy(pool)
        extra = torch.randint(0, len(pool), (n - len(pool),), generator=g)
        order = torch.cat([ids[torch.randperm(len(pool), generator=g)], ids[extra]])
        return order[torch.randperm(n, generator=g)].tolist()

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        order = self._order()
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 7_919)
        for b in range(len(self)):
            items = [
                self.sample(i, gen) for i in order[b * self.batch_size : (b + 1) * self.batch_size]
            ]
            batch: dict[str, torch.Tensor] = {
                "frames": torch.stack([it["frames"] for it in items]),  # type: ignore[misc]
                "audio": torch.stack([it["audio"] for it in items]),  # type: ignore[misc]
                "label": _labels([it["label"] for it in items]),
            }
            if self.negatives:
                batch["audio_negative"] = torch.stack([it["audio_negative"] for it in items])  # type: ignore[misc]
            yield batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.prefetch <= 0:
            yield from self._batches()
            return
        q: queue.Queue[object] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        end = object()

        def produce() -> None:
            # per calling thread under OpenMP (the consumer keeps its team); torch also keeps the
            # last value for threads started later, hence the reset
            inherited = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for batch in self._batches():
                    if stop.is_set():
                        return
                    q.put(batch)
                q.put(end)
            except BaseException as err:  # surface producer errors in the consumer
                q.put(err)
            finally:
                torch.set_num_threads(inherited)

        worker = threading.Thread(target=produce, daemon=True, name="clip-batches")
        worker.start()
        try:
            while True:
                item = q.get()
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)
