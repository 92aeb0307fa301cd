"""Compute accounting of an answer (GMACs), counted once per model and kept on disk.

Counting runs the model on ``meta`` tensors under torch's FLOP counter, and the first meta op
of a process imports ``torch._dynamo``: ~2.5 s of CPU, then ~0.5 s per crop size, which a
fresh ``avserve classify`` or a starting gateway would pay on its first answer (issue 19,
start-up). The counts depend only on the architecture, the crop / K and torch's counting
rules, so they are stored in a small JSON file keyed by those and read back by every later
process. Misses are counted on the model thread (``service.executor``): counting is torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "compute-cost.json"


def default_cache_dir() -> Path:
    """Where exported graphs are cached too when no cache folder is configured."""
    return Path(tempfile.gettempdir()) / "avserve-exports"


def _fingerprint(kind: str, config: Any) -> str:
    import torch

    is_instance = dataclasses.is_dataclass(config) and not isinstance(config, type)
    body = dataclasses.asdict(config) if is_instance else repr(config)
    text = json.dumps({"kind": kind, "config": body, "torch": torch.__version__}, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class CostBook:
    """GMACs of one heavy clip per crop and of one glance per K, for one model package."""

    def __init__(
        self, heavy_config: Any, glance_config: Any | None, cache_dir: Path | None
    ) -> None:
        self._heavy_config = heavy_config
        self._glance_config = glance_config
        self._path = (cache_dir or default_cache_dir()) / FILE_NAME
        self._heavy_key = _fingerprint("heavy", heavy_config)
        self._glance_key = None if glance_config is None else _fingerprint("glance", glance_config)
        self._lock = threading.Lock()
        self._known: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads(self._path.read_text())
            if isinstance(stored, dict):
                self._known = {str(k): float(v) for k, v in stored.items()}

    def _heavy_entry(self, crop: int) -> str:
        return f"{self._heavy_key}:crop={crop}"

    def _glance_entry(self, k: int) -> str:
        return f"{self._glance_key}:k={k}"

    def missing(self, crops: list[int], ks: list[int]) -> bool:
        with self._lock:
            need = [self._heavy_entry(c) for c in crops]
            if self._glance_key is not None:
                need += [self._glance_entry(k) for k in ks]
            return any(e not in self._known for e in need)

    def heavy(self, crop: int) -> float:
        """Multiply-adds of one heavy clip at ``crop`` squared."""
        return self._get(self._heavy_entry(crop), lambda: self._count_heavy(crop))

    def glance(self, k: int) -> float:
        """One video's glance: every snippet through the encoders + AV-TeST, K patches located."""
        if self._glance_key is None:
            return 0.0
        return self._get(self._glance_entry(k), lambda: self._count_glance(k))

    def _get(self, entry: str, count: Any) -> float:
        with self._lock:
            if entry in self._known:
                return self._known[entry]
        from service.executor import model_thread

        value = float(model_thread().call(count))
        with self._lock:
            self._known[entry] = value
            self._save()
        return value

    def _count_heavy(self, crop: int) -> float:
        from models.flops import model_gmacs

        return model_gmacs(self._heavy_config, crop=crop)

    def _count_glance(self, k: int) -> float:
        from models.glance import glance_cost

        assert self._glance_config is not None  # glance() answers 0 without a glance
        cost = glance_cost(self._glance_config, k=max(k, 1))
        return cost.forward_gmacs + k * cost.per_selected_gmacs

    def _save(self) -> None:
        # Merge with what other processes wrote; replace atomically (replicas share the folder).
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            merged: dict[str, float] = {}
            with contextlib.suppress(OSError, ValueError):
                stored = json.loads(self._path.read_text())
                if isinstance(stored, dict):
                    merged = {str(k): float(v) for k, v in stored.items()}
            merged |= self._known
            partial = self._path.with_name(f".{os.getpid()}.{threading.get_ident()}.{FILE_NAME}")
            partial.write_text(json.dumps(merged, indent=1, sort_keys=True))
            os.replace(partial, self._path)
        except OSError as e:  # a read-only cache only costs the next process a recount
            log.warning("cannot store compute costs in %s: %s", self._path, e)
