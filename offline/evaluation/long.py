"""Long-video evaluation: every window policy through the real ``service.pipeline.Pipeline``.

Each video is classified once per (policy, K) and once densely (30 views), by the same code the
HTTP service runs (in-process decoding, the eager runtime instead of the dynamic batcher). GMACs
are the pipeline's own accounting (heavy windows + glance). The "hit rate" uses the generator's
event window, for evaluation only: the fraction of videos where some selected window overlaps
the event in time; ``box_hit_rate`` also asks that window's crop to hold at least half of the
event's box.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import load_package
from models.calibration import BACKGROUND
from offline.data.avsynth.generate import read_manifest
from offline.evaluation.stats import accuracy
from offline.provenance import machine
from service.executor import model_thread
from service.inline_decoder import InlineDecoder
from service.pipeline import Pipeline
from service.pipeline_config import PipelineConfig
from service.policies import PolicyConfig
from service.runtimes import build_runtime
from service.schemas import ClassifyOptions, Priority, WindowOut

WINDOW_POLICIES = ("glance", "heuristic", "uniform")


@dataclass(frozen=True)
class LongEvalConfig:
    ks: tuple[int, ...] = (1, 2, 4)
    policies: tuple[str, ...] = (*WINDOW_POLICIES, "dense")
    limit: int | None = None
    workers: int = 1  # videos in flight at once
    rho: float | None = None  # glance patch side / short side (None: the package's)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def window_hits(windows: Sequence[WindowOut], record: Mapping[str, Any]) -> tuple[bool, bool]:
    """(some window overlaps the event in time, and that window's box holds >= 50% of it)."""
    e0, e1 = float(record["event_start_s"]), float(record["event_end_s"])
    ex, ey, ew, eh = record["event_box"]
    time_hit = box_hit = False
    for w in windows:
        if _overlap(w.start_s, w.end_s, e0, e1) <= 0:
            continue
        time_hit = True
        x, y, bw, bh = w.box
        inter = _overlap(x, x + bw, ex, ex + ew) * _overlap(y, y + bh, ey, ey + eh)
        box_hit = box_hit or inter >= 0.5 * ew * eh
    return time_hit, box_hit


def window_readings(
    windows: Sequence[WindowOut], record: Mapping[str, Any], head: str
) -> list[dict[str, Any]]:
    """Each window's own answer against the generator's event: how much of the window the event
    fills, whether its crop holds >= 50% of the event box, and what the window alone said."""
    e0, e1 = float(record["event_start_s"]), float(record["event_end_s"])
    ex, ey, ew, eh = record["event_box"]
    out = []
    for w in windows:
        if w.heads is None:
            continue
        x, y, bw, bh = w.box
        inter = _overlap(x, x + bw, ex, ex + ew) * _overlap(y, y + bh, ey, ey + eh)
        span = max(w.end_s - w.start_s, 1e-9)
        label = w.heads[head].label
        out.append({
            "event_fill": _overlap(w.start_s, w.end_s, e0, e1) / span,
            "box_hit": inter >= 0.5 * ew * eh,
            "right": label == record["class_name"],
            "background": label == BACKGROUND,
        })  # fmt: skip
    return out


# Window buckets by the share of the window the event fills (and box hit where it is >= 0.6).
FILL_BUCKETS = (("none", 0.0, 0.0), ("< 0.6", 1e-9, 0.6), (">= 0.6", 0.6, 1.01))


def summarise_windows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-window accuracy of the heavy model by how well the window holds the event."""
    seen = [w for r in rows for w in r.get("window_readings", [])]
    out = []
    for name, lo, hi in FILL_BUCKETS:
        for box in (True, False) if lo >= 0.6 else (None,):
            sel = [
                w
                for w in seen
                if (lo <= w["event_fill"] < hi if hi > lo else w["event_fill"] == 0.0)
                and (box is None or w["box_hit"] == box)
            ]
            if not sel:
                continue
            out.append({
                "event_fill": name,
                "box_hit": box,
                "windows": len(sel),
                **accuracy(sum(w["right"] for w in sel), len(sel)),
                "called_background": round(float(np.mean([w["background"] for w in sel])), 4),
            })  # fmt: skip
    return out


class _EagerInfer:
    """The heavy model through the service's eager runtime (the batcher's runtime, unbatched)."""

    def __init__(self, package: Any) -> None:
        self.runtime = build_runtime(package, "eager", "cpu")

    async def __call__(
        self, inputs: Mapping[str, np.ndarray], priority: Priority, deadline: float | None
    ) -> np.ndarray:
        # on the model thread with the glance net: one OpenMP team (service.executor says why)
        return await model_thread().run(self.runtime.run, inputs)


def runs_of(cfg: LongEvalConfig, has_glance: bool) -> list[tuple[str, int | None]]:
    runs: list[tuple[str, int | None]] = []
    for policy in cfg.policies:
        if policy == "glance" and not has_glance:
            continue
        if policy == "dense":
            runs.append(("dense", None))
        else:
            runs.extend((policy, k) for k in cfg.ks)
    return runs


def summarise(
    rows: Sequence[dict[str, Any]], policy: str, k: int | None, dense_gmacs: float
) -> dict[str, Any]:
    n = len(rows)
    gmacs = float(np.mean([r["gmacs"] for r in rows]))
    out: dict[str, Any] = {
        "policy": policy,
        "k": k,
        **accuracy(sum(r["correct"] for r in rows), n),
        "gmacs_per_video": round(gmacs, 4),
        "glance_gmacs_per_video": round(float(np.mean([r["glance_gmacs"] for r in rows])), 4),
        "pct_of_dense_gmacs": round(100 * gmacs / dense_gmacs, 2) if dense_gmacs else None,
        "wall_ms_per_video": round(float(np.mean([r["ms"] for r in rows])), 2),
        "mean_windows": round(float(np.mean([r["windows"] for r in rows])), 3),
        "abstain_rate": round(float(np.mean([r["abstained"] for r in rows])), 4),
        "known_and_correct": accuracy(sum(r["known_and_correct"] for r in rows), n)["top1"],
    }
    out["windows"] = summarise_windows(rows)
    if policy != "dense":
        out["hit_rate"] = round(float(np.mean([r["hit"] for r in rows])), 4)
        out["box_hit_rate"] = round(float(np.mean([r["box_hit"] for r in rows])), 4)
    return out


async def _evaluate(
    data_dir: Path,
    records: Sequence[dict[str, Any]],
    pipeline: Pipeline,
    runs: Sequence[tuple[str, int | None]],
    workers: int,
    on_video: Callable[[], None] | None,
) -> dict[tuple[str, int | None], list[dict[str, Any]]]:
    head = pipeline.package.heads[0].name
    rows: dict[tuple[str, int | None], list[dict[str, Any]]] = {run: [] for run in runs}
    sem = asyncio.Semaphore(workers)

    async def one(rec: dict[str, Any]) -> None:
        async with sem:
            for policy, k in runs:
                options = ClassifyOptions(policy=policy, k=k, top_k=1)
                start = time.perf_counter()
                r = await pipeline.classify(data_dir / rec["file"], options)
                ms = 1000 * (time.perf_counter() - start)
                hit, box_hit = window_hits(r.windows or [], rec)
                rows[(policy, k)].append({
                    "file": rec["file"],
                    "correct": r.heads[head][0].label == rec["class_name"],
                    "abstained": r.verdicts[head].verdict == "unknown",
                    "known_and_correct": r.verdicts[head].label == rec["class_name"],
                    "gmacs": r.compute.gmacs,
                    "glance_gmacs": r.compute.glance_gmacs,
                    "dense30_gmacs": r.compute.dense30_gmacs,
                    "ms": ms,
                    "windows": r.k,
                    "hit": hit,
                    "box_hit": box_hit,
                    "window_readings": window_readings(r.windows or [], rec, head),
                })  # fmt: skip
            if on_video is not None:
                on_video()

    await asyncio.gather(*(one(rec) for rec in records))
    return rows


def evaluate_long(
    data_dir: Path,
    package_dir: Path,
    cfg: LongEvalConfig = LongEvalConfig(),
    on_video: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Evaluate the window policies of one package on ``data_dir``; a JSON-ready report."""
    records = read_manifest(data_dir)[: cfg.limit]
    if not records:
        raise ValueError(f"{data_dir}: the manifest lists no videos")
    package = load_package(package_dir)
    config = PipelineConfig(policy=PolicyConfig(rho=cfg.rho))
    pipeline = Pipeline(package, InlineDecoder(), _EagerInfer(package), config)
    runs = runs_of(cfg, pipeline.glance is not None)
    rows = asyncio.run(_evaluate(data_dir, records, pipeline, runs, cfg.workers, on_video))
    dense_gmacs = pipeline.dense30_gmacs()
    return {
        "data": str(data_dir),
        "package": str(package_dir),
        "model": {"name": package.name, "version": package.version},
        "videos": len(records),
        "dense30_gmacs": round(dense_gmacs, 4),
        "glance_beta": pipeline.glance_beta,
        "rho": cfg.rho,
        "machine": machine(),
        "results": [summarise(rows[run], run[0], run[1], dense_gmacs) for run in runs],
        # per-window readings are summarised above, not listed (30 per video for dense)
        "per_video": {
            f"{p}@{k}" if k else p: [
                {key: v for key, v in row.items() if key != "window_readings"}
                for row in rows[(p, k)]
            ]
            for p, k in runs
        },
    }
