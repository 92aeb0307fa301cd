"""The release gate of the AVSynth model as a table: every goal of issue 11, shipped vs candidates.

Reads the result files ``avserve eval`` wrote (``docs/results/eval_*.json``, one folder per
candidate and release, ``offline.evaluation.coverage.package_result_folders``);
``scripts/render_results.py`` puts the table into docs/avsynth.md. A candidate ships only if it
keeps every goal the shipped package meets (docs/avsynth.md, "The candidates and the release
gate").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline.evaluation.coverage import package_result_folders


def _evals(folder: Path, zoo_config: Path) -> dict[str, Any]:
    out = {k: json.loads((folder / f"eval_{k}.json").read_text()) for k in EVALS}
    cfg_file = folder / "package_config.json"
    if not cfg_file.is_file():  # the shipped package's own config
        cfg_file = zoo_config
    out["config"] = json.loads(cfg_file.read_text())
    return out


EVALS = ("honesty", "long", "ood")  # what the gate table reads


def gate_table(results: Path, zoo_config: Path) -> str:
    """Shipped vs each candidate on every goal of issue 11 (the release gate), from the result
    files: ``results``/eval_*.json and ``results``/candidates/<name>/eval_*.json (a candidate
    whose files are not all there yet is left out); the shipped column is the package whose
    config is ``zoo_config``."""
    rows: list[tuple[str, str, Callable[[dict[str, Any]], float], Callable[[float], bool]]] = [
        ("short clips: top-1", "≥ 97%", lambda e: e["honesty"]["top1"]["top1"], lambda v: v >= 0.97),
        ("short clips: false abstention", "≤ 2%",
         lambda e: e["honesty"]["false_abstention"]["top1"], lambda v: v <= 0.02),
        ("ECE on validation", "≤ 0.05",
         lambda e: e["config"]["calibration"]["avsynth"]["metrics"]["ece"], lambda v: v <= 0.05),
        ("no audio: top sound-defined class score", "≤ 0.6",
         lambda e: e["honesty"]["silent"]["max_sound_class_score"], lambda v: v <= 0.6),
        ("long: glance best of K = 1, 2", "≥ 95%",
         lambda e: max(_long(e, "glance", 1)["top1"], _long(e, "glance", 2)["top1"]),
         lambda v: v >= 0.95),
        ("long: glance K = 4 − K = 1", "≥ 0",
         lambda e: _long(e, "glance", 4)["top1"] - _long(e, "glance", 1)["top1"],
         lambda v: v >= 0),
        ("long: glance K = 2 GMACs, % of dense", "≤ 20%",
         lambda e: _long(e, "glance", 2)["pct_of_dense_gmacs"] / 100, lambda v: v <= 0.2),
        ("long: dense-30 top-1", "≥ 90%", lambda e: _long(e, "dense", None)["top1"],
         lambda v: v >= 0.9),
        ("long: heavy model alone on glance windows that hold the event", "–",
         lambda e: _held_windows(e), lambda v: True),
        ("real videos (`../shared/media`): abstained", "≥ 90%",
         lambda e: e["ood"]["abstained"]["top1"], lambda v: v >= 0.9),
    ]  # fmt: skip
    folders = [
        f
        for f in package_result_folders(results)
        if all((f / f"eval_{k}.json").is_file() for k in EVALS)
    ]
    zoo = json.loads(zoo_config.read_text())
    columns = [_evals(f, zoo_config) for f in folders]
    names = [
        f"`{f.name}`" + (" (shipped)" if e["config"] == zoo else "")
        for f, e in zip(folders, columns, strict=True)
    ]
    if not any(e["config"] == zoo for e in columns):  # the shipped package has no folder yet
        columns.insert(0, _evals(results, zoo_config))
        names.insert(0, f"shipped {zoo['version']}")
    lines = [
        "| goal | target | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for label, target, get, ok in rows:
        cells = []
        for e in columns:
            v = get(e)
            if "ECE" in label or "score" in label:
                shown = f"{v:.4f}"
            elif "−" in label:
                shown = f"{100 * v:+.1f} points"
            else:
                shown = f"{100 * v:.1f}%"
            mark = "" if target == "–" else (" ✓" if ok(v) else " ✗")
            cells.append(shown + mark)
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _held_windows(e: dict[str, Any]) -> float:
    """Glance K = 4 windows the event fills >= 60% with the crop holding its box: share right."""
    w = next(
        x for x in _long(e, "glance", 4)["windows"] if x["event_fill"] == ">= 0.6" and x["box_hit"]
    )
    return float(w["top1"])


def _long(e: dict[str, Any], policy: str, k: int | None) -> dict[str, Any]:
    return next(x for x in e["long"]["results"] if x["policy"] == policy and x["k"] == k)
