"""Decode a generated set ONCE into a compact uint8 clip cache (``.npy`` memmaps).

Each file becomes ``n`` square frames of ``side`` px on a fixed time grid (``grid_fps``; by
default the model's sampling grid, 30 fps / stride 2 = 15 fps, so no cached frame is wasted)
and a 16 kHz mono waveform (mean of the channels, as the official recipe). Which square:

* ``region="center"`` (short split): the central short-side square of the whole clip. The
  short-split event lives there, and it is the service's centre view.
* ``region="event"`` (long split): the event box of the manifest (grown to a square of at
  least 0.6 x short side, the glance patch) over the event window +- ``event_margin_s``.
* ``region="views"`` (long split): several items per video, cut the way serving shows a long
  video to the heavy model (``offline.data.long_views``): the event seen through a glance
  patch and through a dense view, each labelled with the class, and stretches without the
  event labelled ``background``.
* ``region="edges"`` (long split): only the ``edge_views`` items of ``"views"`` (windows that
  catch an event's start or end), so they can join training later than the rest.

Decoding goes through ``service.media`` (``probe`` + ``read_clips``: nearest decoded frame per
grid instant, the box cut and resized there, 16 kHz mono audio), the same code serving uses.

User sources (class folders, lists) are cached by ``offline.data.source_cache`` through the same
``write_cache``: same layout, plus ``multi_hot`` for multi-label sets.

Layout of ``cache_dir``: ``frames.npy`` uint8 [F, side, side, 3], ``audio.npy`` float32 [N],
``index.npz`` (per clip offsets / counts / labels) and ``cache.json`` (written last: a cache
without it is incomplete and is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from offline.data.avsynth.generate import read_manifest
from service.errors import AvserveError
from service.media import ClipSpec, ClipWindow, CropBox, MediaPolicy, probe, read_clips

Region = Literal["center", "event", "views", "edges"]


@dataclass(frozen=True)
class CacheConfig:
    side: int = 128  # cached square side (crops of ~112 px are taken from it)
    grid_fps: float = 15.0
    audio_sample_rate: int = 16000
    region: Region = "center"
    event_margin_s: float = 0.5
    min_event_frac: float = 0.6  # event squares are at least this x short side (glance patch)
    # region="views": squares of these sides x short side (glance patch rho, dense view) ...
    view_sides: tuple[float, ...] = (0.8, 1.0)
    view_margin_s: float = 0.8  # ... over the event +- this (a model window stays >= 60% event)
    background_views: int = 3  # event-free stretches per video, label ``background``
    partial_views: bool = True  # + dense crops / a patch holding >= half the event box
    edge_views: int = 0  # + windows that catch only the event's start or end (fill ~0.2-0.6)


VIEW_FIELDS = ("view_sides", "view_margin_s", "background_views", "partial_views", "edge_views")


@dataclass(frozen=True)
class _Job:
    path: str
    t0: float
    t1: float
    box: tuple[int, int, int, int]
    frame_offset: int
    n_frames: int
    audio_offset: int
    n_audio: int
    cache_dir: str
    total_frames: int
    total_audio: int
    cfg: CacheConfig


def _square(rec: dict[str, Any], cfg: CacheConfig) -> tuple[int, int, int, int]:
    w, h = int(rec["width"]), int(rec["height"])
    short = min(w, h)
    if cfg.region == "center":
        return ((w - short) // 2, (h - short) // 2, short, short)
    x, y, bw, bh = (int(v) for v in rec["event_box"])
    side = min(short, max(bw, bh, round(cfg.min_event_frac * short)))
    cx, cy = x + bw / 2, y + bh / 2
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    return (x0, y0, side, side)


def _window(rec: dict[str, Any], cfg: CacheConfig) -> tuple[float, float]:
    if cfg.region == "center":
        return 0.0, float(rec["duration_s"])
    t0 = max(0.0, float(rec["event_start_s"]) - cfg.event_margin_s)
    return t0, min(float(rec["duration_s"]), float(rec["event_end_s"]) + cfg.event_margin_s)


def decode_window(
    path: str | Path,
    t0: float,
    t1: float,
    box: tuple[int, int, int, int],
    cfg: CacheConfig,
    n_frames: int,
    n_audio: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [n_frames, side, side, 3], audio float32 [n_audio]) of one file's window.

    Decoded by the service's own media module (probe + read_clips, as one clip whose frames are
    the cache's time grid), so training sees exactly the pixels and audio serving decodes.
    """
    policy = MediaPolicy()
    info = probe(Path(path), policy)
    spec = ClipSpec(
        num_frames=n_frames,
        sampling_rate=1,
        target_fps=cfg.grid_fps,
        crop_size=cfg.side,
        audio_sample_rate=cfg.audio_sample_rate,
    )
    batch = read_clips(Path(path), info, [ClipWindow(t0, CropBox(*box))], spec, policy)
    audio = np.zeros(n_audio, dtype=np.float32)
    piece = batch.audio[0][:n_audio]
    audio[: len(piece)] = piece
    return batch.frames[0], audio


def _run(job: _Job) -> None:
    frames, audio = decode_window(
        job.path, job.t0, job.t1, job.box, job.cfg, job.n_frames, job.n_audio
    )
    root = Path(job.cache_dir)
    fm = np.lib.format.open_memmap(root / "frames.npy", mode="r+")
    fm[job.frame_offset : job.frame_offset + job.n_frames] = frames
    fm.flush()
    am = np.lib.format.open_memmap(root / "audio.npy", mode="r+")
    am[job.audio_offset : job.audio_offset + job.n_audio] = audio
    am.flush()


class ClipSource(Protocol):
    """What ``ClipBatches`` reads: a ``ClipCache`` or several of them (``CacheUnion``)."""

    config: CacheConfig
    labels: np.ndarray
    multi_hot: np.ndarray | None
    flip_map: list[int] | None
    class_names: list[str]

    def __len__(self) -> int: ...
    def clip_frames(self, i: int) -> np.ndarray: ...
    def clip_audio(self, i: int) -> np.ndarray: ...


class ClipCache:
    """Read side of a built cache: per-clip frame and audio views into the memmaps."""

    def __init__(self, cache_dir: str | Path) -> None:
        root = Path(cache_dir)
        meta_path = root / "cache.json"
        if not meta_path.is_file():
            raise AvserveError(f"no complete clip cache in {root}", code="not_found")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.config = CacheConfig(**self.meta["config"])
        self.frames = np.load(root / "frames.npy", mmap_mode="r")
        self.audio = np.load(root / "audio.npy", mmap_mode="r")
        index = np.load(root / "index.npz")
        self.frame_offset, self.frame_count = index["frame_offset"], index["frame_count"]
        self.audio_offset, self.audio_count = index["audio_offset"], index["audio_count"]
        self.labels: np.ndarray = index["label"]
        # multi-label sources: uint8 [N, C] targets (``labels`` then holds each clip's first)
        self.multi_hot: np.ndarray | None = index.get("multi_hot")
        self.flip_map: list[int] | None = self.meta.get("flip_label_map")
        self.class_names: list[str] = self.meta.get("class_names", [])

    def __len__(self) -> int:
        return len(self.labels)

    def clip_frames(self, i: int) -> np.ndarray:
        o = int(self.frame_offset[i])
        return self.frames[o : o + int(self.frame_count[i])]

    def clip_audio(self, i: int) -> np.ndarray:
        o = int(self.audio_offset[i])
        return self.audio[o : o + int(self.audio_count[i])]


class CacheUnion:
    """Several caches read as one: training on a mix (short clips + long-video views).

    The first cache names the classes and the flip map; every cache must share its frame grid,
    square side and audio rate, and labels are indices into the first cache's classes.
    ``join_epochs`` (one per cache; the first is 0) lets a cache join training at a later epoch
    (a curriculum); ``ClipBatches`` reads ``active(epoch)``.
    """

    def __init__(
        self, caches: Sequence[ClipSource], join_epochs: Sequence[int] | None = None
    ) -> None:
        if not caches:
            raise ValueError("a cache union needs at least one cache")
        joins = list(join_epochs) if join_epochs is not None else [0] * len(caches)
        if len(joins) != len(caches) or min(joins) < 0 or joins[0] != 0:
            raise ValueError("join_epochs: one epoch >= 0 per cache, and the first cache at 0")
        first = caches[0].config
        for c in caches[1:]:
            cfg = c.config
            same = (cfg.side, cfg.grid_fps, cfg.audio_sample_rate)
            if same != (first.side, first.grid_fps, first.audio_sample_rate):
                raise ValueError("mixed caches need the same side, frame grid and audio rate")
        if any(c.multi_hot is not None for c in caches):
            raise ValueError("multi-label caches cannot be mixed")
        self.caches = list(caches)
        self.config = first
        self.labels = np.concatenate([c.labels for c in caches])
        self.multi_hot = None
        self.flip_map = caches[0].flip_map
        self.class_names = caches[0].class_names
        self._which = np.concatenate(
            [np.full(len(c), k, dtype=np.int64) for k, c in enumerate(caches)]
        )
        self._local = np.concatenate([np.arange(len(c), dtype=np.int64) for c in caches])
        self._joins = np.asarray(joins, dtype=np.int64)

    def active(self, epoch: int) -> np.ndarray:
        """Indices of the items that train in ``epoch`` (0-based): their cache has joined."""
        return np.flatnonzero(self._joins[self._which] <= epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def clip_frames(self, i: int) -> np.ndarray:
        return self.caches[int(self._which[i])].clip_frames(int(self._local[i]))

    def clip_audio(self, i: int) -> np.ndarray:
        return self.caches[int(self._which[i])].clip_audio(int(self._local[i]))


def _fingerprint(data_dir: Path, records: list[dict[str, Any]], cfg: CacheConfig) -> str:
    """Manifest + cache config + every file's size and mtime: regenerated files invalidate."""
    h = hashlib.sha1((data_dir / "manifest.jsonl").read_bytes())
    fields = asdict(cfg)
    if cfg.region not in ("views", "edges"):  # view options do not change other caches
        for name in VIEW_FIELDS:
            fields.pop(name)
    h.update(json.dumps(fields, sort_keys=True).encode())
    for rec in records:
        st = (data_dir / rec["file"]).stat()
        h.update(f"{rec['file']}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def write_cache(
    root: Path,
    cfg: CacheConfig,
    paths: list[str],
    windows: list[tuple[float, float]],
    boxes: list[tuple[int, int, int, int]],
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Decode ``paths[i]``'s window and box into ``root``; ``arrays`` (labels) go to the index.

    ``meta`` (with its ``fingerprint``) becomes ``cache.json``, written last.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "cache.json").unlink(missing_ok=True)
    n_frames, n_audio = [], []
    for t0, t1 in windows:
        n_frames.append(max(1, math.ceil((t1 - t0) * cfg.grid_fps - 1e-6)))
        n_audio.append(max(1, round((t1 - t0) * cfg.audio_sample_rate)))
    f_off = np.concatenate([[0], np.cumsum(n_frames)[:-1]]).astype(np.int64)
    a_off = np.concatenate([[0], np.cumsum(n_audio)[:-1]]).astype(np.int64)
    total_f, total_a = int(sum(n_frames)), int(sum(n_audio))
    shape = (total_f, cfg.side, cfg.side, 3)
    np.lib.format.open_memmap(root / "frames.npy", mode="w+", dtype=np.uint8, shape=shape).flush()
    np.lib.format.open_memmap(root / "audio.npy", mode="w+", dtype=np.float32, shape=(total_a,))
    jobs = [
        _Job(path, t0, t1, box, int(f_off[i]), n_frames[i], int(a_off[i]), n_audio[i],
             str(root), total_f, total_a, cfg)
        for i, (path, (t0, t1), box) in enumerate(zip(paths, windows, boxes, strict=True))
    ]  # fmt: skip
    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            _run(job)
            if on_progress:
                on_progress(done, len(jobs))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for done, _ in enumerate(pool.map(_run, jobs, chunksize=4), 1):
                if on_progress:
                    on_progress(done, len(jobs))
    index = {
        "frame_offset": f_off,
        "frame_count": np.asarray(n_frames, dtype=np.int64),
        "audio_offset": a_off,
        "audio_count": np.asarray(n_audio, dtype=np.int64),
        **arrays,
    }
    np.savez(root / "index.npz", **index)  # type: ignore[arg-type]
    (root / "cache.json").write_text(json.dumps(meta))


def build_cache(
    data_dir: str | Path,
    cache_dir: str | Path,
    cfg: CacheConfig = CacheConfig(),
    *,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClipCache:
    """Decode every file of ``data_dir`` into ``cache_dir`` (reused when already up to date)."""
    data_dir, root = Path(data_dir), Path(cache_dir)
    records = read_manifest(data_dir)
    fingerprint = _fingerprint(data_dir, records, cfg)
    meta_path = root / "cache.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
        return ClipCache(root)
    if cfg.region in ("views", "edges"):
        from offline.data.long_views import edge_items, view_items

        cut = view_items if cfg.region == "views" else edge_items
        items = [it for rec in records for it in cut(rec, cfg)]
    else:
        items = [(rec, _window(rec, cfg), _square(rec, cfg), int(rec["label"])) for rec in records]
    labels_path = data_dir / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.is_file() else {}
    meta = {
        "fingerprint": fingerprint,
        "config": asdict(cfg),
        "source": str(data_dir),
        "files": [rec["file"] for rec, *_ in items],
        "class_names": labels.get("names", []),
        "flip_label_map": labels.get("flip_label_map"),
    }
    paths = [str(data_dir / rec["file"]) for rec, *_ in items]
    windows = [window for _, window, _, _ in items]
    boxes = [box for _, _, box, _ in items]
    arrays = {"label": np.asarray([label for *_, label in items], dtype=np.int64)}
    write_cache(root, cfg, paths, windows, boxes, arrays, meta, workers, on_progress)
    return ClipCache(root)
