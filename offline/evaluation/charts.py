"""PNG charts of the evaluation reports (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: evaluation runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np

_COLOURS = {"glance": "tab:red", "heuristic": "tab:orange", "uniform": "tab:blue"}


def plot_long(report: dict[str, Any], path: Path) -> Path:
    """Top-1 accuracy against mean GMACs per video: one line per window policy over K, dense
    as a star (the reference), 95% intervals as error bars."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = report["results"]
    for policy in dict.fromkeys(r["policy"] for r in rows):
        pts = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["gmacs_per_video"])
        x = [r["gmacs_per_video"] for r in pts]
        y = [100 * r["top1"] for r in pts]
        err = np.array(
            [
                [y_ - 100 * r["ci95"][0], 100 * r["ci95"][1] - y_]
                for r, y_ in zip(pts, y, strict=True)
            ]
        ).T
        if policy == "dense":
            ax.errorbar(x, y, yerr=err, fmt="*", ms=14, color="black", label="dense (30 views)")
            continue
        ax.errorbar(x, y, yerr=err, fmt="-o", capsize=3, color=_COLOURS.get(policy), label=policy)
        for r, xi, yi in zip(pts, x, y, strict=True):
            ax.annotate(
                f"K={r['k']}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8
            )
    ax.set_xscale("log")
    ax.set_xlabel("GMACs per video (heavy + glance)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"AVSynth long videos (n={report['videos']}): accuracy vs compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_short(report: dict[str, Any], path: Path) -> Path:
    """Per-class top-1 accuracy, one bar per model in each class group (plus "all")."""
    names = [*report["class_names"], "all"]
    models = report["models"]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(names) * max(len(models), 1) / 2), 4.5))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(names))
    for i, (model, res) in enumerate(models.items()):
        acc = [res["per_class"][n]["top1"] for n in report["class_names"]] + [
            res["overall"]["top1"]
        ]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, [100 * a for a in acc], width, label=model)
    ax.set_xticks(x, names, rotation=35, ha="right")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"AVSynth short clips (n={report['clips']}): per-class accuracy")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(ncols=min(len(models), 4), loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_ablation(report: dict[str, Any], path: Path) -> Path:
    """One panel per ablation group: top-1 per variant with its 95% interval."""
    groups = report["groups"]
    rows = report["variants"]
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(7.5, 1.1 + 0.55 * sum(len(v) for v in groups.values())),
        squeeze=False,
        gridspec_kw={"height_ratios": [max(len(v), 1) for v in groups.values()]},
    )  # fmt: skip
    for ax, (group, names) in zip(axes[:, 0], groups.items(), strict=True):
        acc = [rows[n]["top1"] for n in names]
        y = np.arange(len(names))[::-1]
        top = np.array([100 * a["top1"] for a in acc])
        err = np.array([[t - 100 * a["ci95"][0], 100 * a["ci95"][1] - t] for a, t in zip(acc, top, strict=True)]).T  # fmt: skip
        ax.barh(y, top, xerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_yticks(y, [rows[n]["label"] for n in names], fontsize=8)
        ax.set_xlim(0, 100)
        if "chance" in report:
            ax.axvline(100 * report["chance"], color="grey", ls="--", lw=1)
        ax.set_title(group, fontsize=9, loc="left")
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("top-1 accuracy (%), 95% Wilson interval; dashed: chance")
    fig.suptitle(
        f"AVSynth short clips: ablations (test n={report['test_clips']}, "
        f"{report['recipe']['epochs']} epochs on {report['train_clips']} clips)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
