"""The paper's design ablations (Tables 5a, 5c, 5d and 6) re-run on AVSynth short clips.

Every variant trains with the same recipe, data, seed and epochs (``avserve train avslowfast``
in a child process, one after another, each with its own log under ``runs_dir/<variant>``) and
is then scored on the same test clips by ``offline.evaluation.short`` (one centre view per clip,
the packaged model exactly as served). Accuracies carry 95% Wilson score intervals.

The default row (A->FS after res3 and res4, DropPathway 0.8, no AV-sync loss) is trained once
and appears in every group, as in the paper, where each sub-table varies one factor around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.configs import FUSION_POINTS
from offline.evaluation.short import ShortEvalConfig, evaluate_short
from offline.provenance import machine

DEFAULT = "a_fs"


@dataclass(frozen=True)
class Variant:
    name: str
    label: str  # as the paper's table row reads
    arch: str
    overrides: tuple[str, ...] = ()  # model config ``key=value``
    train_args: tuple[str, ...] = ()  # extra ``avserve train avslowfast`` flags


@dataclass(frozen=True)
class Recipe:
    """What every variant shares (the paper's recipe at AVSynth scale)."""

    epochs: int = 6
    batch_size: int = 16
    lr: float = 0.05
    warmup_epochs: float = 1.0
    crop_size: int = 64
    cache_side: int = 80
    seed: int = 0
    threads: int = 1
    steps_per_epoch: int | None = None  # cap (smoke runs); None: the whole training set


_AVS_ARGS = ("--avs-weight", "1.0", "--avs-stages", "res3,res4,res5")
VARIANTS: tuple[Variant, ...] = (
    Variant(DEFAULT, "A→FS, res3,4 (default)", "avslowfast_tiny"),
    Variant("a_f_s", "A→F→S", "avslowfast_tiny_a2f2s"),
    Variant("av_nonlocal", "AV non-local", "avslowfast_tiny_avnl"),
    Variant("late", "pool5 only (late fusion)", "avslowfast_tiny_late"),
    Variant("res4", "res4 + pool5", "avslowfast_tiny_fuse_res4"),
    Variant("res234", "res2,3,4 + pool5", "avslowfast_tiny_fuse_res234"),
    Variant(
        "avs",
        "AVS res3,4,5 (negatives curriculum)",
        "avslowfast_tiny",
        train_args=_AVS_ARGS,
    ),
    Variant(
        "avs_sync_first",
        "AVS res3,4,5, sync-only first epoch",
        "avslowfast_tiny",
        train_args=(*_AVS_ARGS, "--avs-sync-only-epochs", "1"),
    ),
    Variant("dp0", "P_d = 0 (no DropPathway)", "avslowfast_tiny", ("drop_pathway=0.0",)),
    Variant("dp05", "P_d = 0.5", "avslowfast_tiny", ("drop_pathway=0.5",)),
)

# Which rows each sub-table shows, in the paper's row order.
GROUPS: dict[str, tuple[str, ...]] = {
    "fusion (Table 5a)": (DEFAULT, "a_f_s", "av_nonlocal"),
    "fusion stages (Table 6)": ("late", "res4", DEFAULT, "res234"),
    "AV-sync (Table 5d)": (DEFAULT, "avs", "avs_sync_first"),
    "DropPathway (Table 5c)": ("dp0", "dp05", DEFAULT),
}

# The paper's Kinetics-400 top-1 (%) for the same rows (R50 4x16, all with AV-sync on).
PAPER_TOP1: dict[str, float] = {
    DEFAULT: 77.0,
    "a_f_s": 75.3,
    "av_nonlocal": 77.2,
    "late": 75.4,
    "res4": 76.5,
    "res234": 75.8,
    "avs": 77.0,  # res3,4,5
    "dp0": 75.2,
    "dp05": 76.7,
}


# The orderings the paper reports (row a above row b, by this many top-1 points). The paper's
# rows all train with AV-sync on (its default), so the AVS gain is 76.4 -> 77.0 of Table 5d.
PAPER_ORDERINGS: tuple[tuple[str, str, float, str], ...] = (
    (DEFAULT, "a_f_s", 1.7, "A→FS beats A→F→S (Table 5a)"),
    ("av_nonlocal", DEFAULT, 0.2, "AV non-local ≈/slightly above A→FS (Table 5a)"),
    (DEFAULT, "late", 1.6, "res3,4 fusion beats late fusion only (Table 6)"),
    (DEFAULT, "res4", 0.5, "res3,4 beats res4 only (Table 6)"),
    (DEFAULT, "res234", 1.2, "adding res2 fusion hurts (Table 6)"),
    ("avs", DEFAULT, 0.6, "the AV-sync loss helps (Table 5d)"),
    (DEFAULT, "dp0", 1.8, "DropPathway 0.8 beats none (Table 5c)"),
    ("dp05", "dp0", 1.5, "DropPathway 0.5 beats none (Table 5c)"),
)


def orderings(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Each paper ordering whose rows were run: our difference and whether intervals separate."""
    out = []
    for a, b, paper_points, claim in PAPER_ORDERINGS:
        if a not in rows or b not in rows:
            continue
        ra, rb = rows[a]["top1"], rows[b]["top1"]
        diff = 100 * (ra["top1"] - rb["top1"])
        separated = ra["ci95"][0] > rb["ci95"][1] or rb["ci95"][0] > ra["ci95"][1]
        out.append(
            {
                "claim": claim,
                "above": a,
                "below": b,
                "paper_points": paper_points,
                "avsynth_points": round(diff, 1),
                "same_sign": diff > 0,
                "intervals_separate": separated,
            }
        )
    return out


def variants(only: Sequence[str] = ()) -> list[Variant]:
    known = {v.name: v for v in VARIANTS}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ValueError(f"unknown ablation variant {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in dict.fromkeys(only)] if only else list(VARIANTS)  # given order


def train_command(v: Variant, r: Recipe, train_data: Path, run_dir: Path, cache: Path) -> list[str]:
    """The ``avserve train avslowfast`` command line of one variant."""
    cmd = [
        sys.executable, "-m", "service.cli", "train", "avslowfast",
        "--data", str(train_data), "--out", str(run_dir), "--arch", v.arch,
        "--epochs", str(r.epochs), "--batch-size", str(r.batch_size), "--lr", str(r.lr),
        "--warmup-epochs", str(r.warmup_epochs), "--crop-size", str(r.crop_size),
        "--cache-side", str(r.cache_side), "--cache-dir", str(cache), "--seed", str(r.seed),
        "--threads", str(r.threads), "--no-progress", *v.train_args,
    ]  # fmt: skip
    if r.steps_per_epoch is not None:
        cmd += ["--steps-per-epoch", str(r.steps_per_epoch)]
    for o in v.overrides:
        cmd += ["--override", o]
    return cmd


def train_all(
    chosen: Sequence[Variant],
    recipe: Recipe,
    train_data: Path,
    runs_dir: Path,
    say: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train each variant that has no finished package yet; seconds of training per variant."""
    seconds: dict[str, float] = {}
    cache = runs_dir / f"cache-{recipe.cache_side}"
    for v in chosen:
        run_dir = runs_dir / v.name
        done = run_dir / "ablation_train.json"
        if done.is_file() and json.loads(done.read_text())["recipe"] == asdict(recipe):
            seconds[v.name] = json.loads(done.read_text())["seconds"]
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = train_command(v, recipe, train_data, run_dir, cache)
        say(f"training {v.name}: {' '.join(cmd[3:])}")
        start = time.perf_counter()
        with open(run_dir / "train.out", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env())
        if proc.returncode != 0:
            raise RuntimeError(f"training {v.name} failed; see {run_dir / 'train.out'}")
        seconds[v.name] = round(time.perf_counter() - start, 1)
        done.write_text(json.dumps({"recipe": asdict(recipe), "seconds": seconds[v.name]}))
    return seconds


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def run_ablation(
    train_data: Path,
    test_data: Path,
    runs_dir: Path,
    recipe: Recipe = Recipe(),
    only: Sequence[str] = (),
    *,
    train: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (unless done) and score the variants; the JSON-ready ``ablation`` report."""
    chosen = variants(only)
    start_machine = machine()
    seconds = train_all(chosen, recipe, train_data, runs_dir, say) if train else {}
    packages = {v.name: runs_dir / v.name / "package" for v in chosen}
    missing = [n for n, p in packages.items() if not (p / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(f"no trained package for {', '.join(missing)} in {runs_dir}")
    say(f"scoring {len(packages)} variants on {test_data}")
    short = evaluate_short(test_data, packages, ShortEvalConfig(batch_size=32))
    rows = {}
    for v in chosen:
        res = short["models"][v.name]
        rows[v.name] = {
            "label": v.label,
            "arch": v.arch,
            "overrides": list(v.overrides),
            "train_args": list(v.train_args),
            "gmacs_per_clip": res["gmacs_per_clip"],
            "params_inference": _params(v),
            "train_seconds": seconds.get(v.name),
            "top1": res["overall"],
            "pairs": {k: p["top1"] for k, p in res["pairs"].items()},
            "pairs_n": {k: p["n"] for k, p in res["pairs"].items()},
            "paper_top1": PAPER_TOP1.get(v.name),
        }
    groups = {g: [n for n in names if n in rows] for g, names in GROUPS.items()}
    return {
        "train_data": str(train_data),
        "train_clips": _count(train_data),
        "test_data": str(test_data),
        "test_clips": short["clips"],
        "recipe": asdict(recipe),
        "ci": "95% Wilson score interval of the top-1 proportion",
        "chance": round(1 / len(short["class_names"]), 4),
        "machine": start_machine,
        "loadavg_at_end": list(os.getloadavg()),
        "variants": rows,
        "groups": {g: names for g, names in groups.items() if names},
        "orderings": orderings(rows),
        "configs": config_costs(),
    }


def config_costs() -> dict[str, dict[str, Any]]:
    """Parameters and GMACs (as ``avserve model info``) of the fusion-variant configs."""
    from models.flops import count_params, model_gmacs
    from models.named_configs import get_config, list_configs

    out: dict[str, dict[str, Any]] = {}
    for base, crop in (("avslowfast_tiny", 64), ("avslowfast_r50_4x16", 224)):
        for name in (n for n in list_configs() if n == base or n.startswith(base + "_")):
            c = get_config(name)
            out[name] = {
                "crop": crop,
                "av_fusion": c.av_fusion,
                "audio_fusion_at": [
                    p for p, on in zip(FUSION_POINTS, c.afs_fusion, strict=True) if on
                ],
                "gmacs": round(model_gmacs(c, crop), 4),
                **count_params(c),
            }
    return out


def _params(v: Variant) -> int:
    from dataclasses import replace

    from models.flops import count_params
    from models.named_configs import get_config

    overrides: dict[str, Any] = {}
    for o in v.overrides:
        key, _, value = o.partition("=")
        overrides[key] = json.loads(value)
    return count_params(replace(get_config(v.arch), **overrides))["params_inference"]


def _count(data: Path) -> int | None:
    manifest = data / "manifest.jsonl"
    if not manifest.is_file():
        return None
    return sum(1 for line in manifest.read_text().splitlines() if line.strip())
