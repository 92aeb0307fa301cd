"""The clip cache of a user source (folder, CSV, JSONL): the same cache AVSynth training uses.

Every sample is probed first (``offline.data.sources.check``): unreadable files stop the build
with their media error code, or are left out and reported with ``allow_errors``. A sample's
window is its row's ``start_s..end_s`` (the whole file without one), clamped to the file and
cut to the centred ``max_seconds`` when longer, so an hour-long video does not fill the disk;
the frame square is the centred short-side square (the service's centre view). The cache is
rebuilt when a file, a label, a window or the config changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from offline.data.cache import CacheConfig, ClipCache, write_cache
from offline.data.sources import Source
from offline.data.sources.check import Probed, probe_samples, usable


def _window(p: Probed, max_seconds: float) -> tuple[float, float]:
    assert p.info is not None
    dur = p.info.duration_s
    t0 = min(max(0.0, p.sample.start_s or 0.0), dur)
    t1 = min(p.sample.end_s if p.sample.end_s is not None else dur, dur)
    if t1 - t0 > max_seconds:
        mid = (t0 + t1) / 2
        t0, t1 = mid - max_seconds / 2, mid + max_seconds / 2
    return t0, max(t1, t0 + 1e-3)


def _box(p: Probed) -> tuple[int, int, int, int]:
    assert p.info is not None
    w, h = p.info.video.width, p.info.video.height
    short = min(w, h)
    return ((w - short) // 2, (h - short) // 2, short, short)


def _fingerprint(source: Source, items: list[Probed], cfg: CacheConfig, max_s: float) -> str:
    doc = [asdict(cfg), max_s, list(source.classes), source.flip_label_map]
    h = hashlib.sha1(json.dumps(doc).encode())
    for p in items:
        st = p.sample.path.stat()
        row = [str(p.sample.path), st.st_size, st.st_mtime_ns, p.sample.labels,
               p.sample.start_s, p.sample.end_s]  # fmt: skip
        h.update(json.dumps(row).encode())
    return h.hexdigest()


def build_source_cache(
    source: Source,
    cache_dir: Path,
    cfg: CacheConfig = CacheConfig(),
    *,
    workers: int = 1,
    max_seconds: float = 10.0,
    allow_errors: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[ClipCache, Source]:
    """Decode ``source`` into ``cache_dir``; returns the cache and the source it holds.

    The returned source lists every sample left out (``problems``), so callers can report it.
    """
    if cfg.region != "center":
        raise ValueError("user sources have no event boxes: use region=center")
    source.require_clean(allow_errors)
    probed = probe_samples(source, workers=workers)
    kept = usable(source, probed)
    kept.require_clean(allow_errors)
    items = [p for p in probed if p.info is not None]
    fingerprint = _fingerprint(kept, items, cfg, max_seconds)
    meta_path = cache_dir / "cache.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
        return ClipCache(cache_dir), kept
    arrays: dict[str, np.ndarray] = {
        "label": np.asarray([p.sample.label for p in items], dtype=np.int64)
    }
    if kept.multi_label:
        hot = np.zeros((len(items), len(kept.classes)), dtype=np.uint8)
        for row, p in enumerate(items):
            hot[row, list(p.sample.labels)] = 1
        arrays["multi_hot"] = hot
    meta = {
        "fingerprint": fingerprint,
        "config": asdict(cfg),
        "source": str(source.location),
        "files": [str(p.sample.path) for p in items],
        "class_names": list(kept.classes),
        "flip_label_map": kept.flip_label_map,
        "multi_label": kept.multi_label,
        "left_out": [p.to_dict() for p in kept.errors],
    }
    write_cache(
        cache_dir, cfg, [str(p.sample.path) for p in items],
        [_window(p, max_seconds) for p in items], [_box(p) for p in items],
        arrays, meta, workers, on_progress,
    )  # fmt: skip
    return ClipCache(cache_dir), kept
