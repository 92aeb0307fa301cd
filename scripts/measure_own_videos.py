"""Goal check of docs/own-videos.md: training through the user-source path (class folders, a
CSV list) matches the native AVSynth path on the same clips, seeds and epochs.

Generates a small AVSynth train / val pair, writes each out as class folders and as CSV lists,
trains ``avserve train avslowfast`` three ways and writes the per-epoch validation top-1 of each
to a JSON file (default docs/results/own_videos_parity.json; scripts/render_results.py turns it
into the table of docs/own-videos.md). Small on purpose (one thread, tiny model);
every size is an option::

    .venv/bin/python scripts/measure_own_videos.py --train 120 --val 100 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from offline.data.export import write_class_folders, write_csv

ROOT = Path(__file__).resolve().parents[1]
AVSERVE = [sys.executable, "-c", "from service.cli import main; main()"]
FLIP_PAIRS = "slide_left:slide_right"  # the AVSynth classes a horizontal flip swaps


def run(*args: str) -> None:
    subprocess.run([*AVSERVE, *args], check=True, cwd=ROOT)


def val_top1(run_dir: Path) -> list[float]:
    if not (run_dir / "train_log.jsonl").is_file():
        return []
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [r["top1"] for r in log if r["event"] == "eval"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/own-videos-parity"))
    ap.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "results" / "own_videos_parity.json"
    )
    ap.add_argument("--train", type=int, default=120)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop-size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0, help="Data seed (AVSynth generation).")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Training seeds.")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    w = a.work
    for subset, count in (("train", a.train), ("val", a.val)):
        if not (w / subset / "manifest.jsonl").is_file():
            run("data", "avsynth", "--split", "short", "--subset", subset, "--count", str(count),
                "--seed", str(a.seed), "--out", str(w / subset))  # fmt: skip
        write_class_folders(w / subset, w / f"{subset}_folders")
        write_csv(w / subset, w / subset / "list.csv")  # paths relative to the list's folder
    common = ["--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
              "--crop-size", str(a.crop_size), "--cache-side", str(round(a.crop_size * 8 / 7)),
              "--threads", str(a.threads), "--no-progress", "--no-package"]  # fmt: skip
    flips = ["--flip-pairs", FLIP_PAIRS]
    ways: dict[str, tuple[str, str, list[str]]] = {
        "avsynth_native": (str(w / "train"), str(w / "val"), []),
        "class_folders": (str(w / "train_folders"), str(w / "val_folders"), flips),
        "csv_list": (str(w / "train" / "list.csv"), str(w / "val" / "list.csv"), flips),
    }
    results: dict[str, dict[str, object]] = {}
    for name, (data, val, extra) in ways.items():
        curves, start = [], time.perf_counter()
        for seed in a.seeds:
            out = w / "runs" / f"{name}-seed{seed}"
            if len(val_top1(out)) < a.epochs:
                run("train", "avslowfast", "--data", data, "--val-data", val, "--out", str(out),
                    "--seed", str(seed), *common, *extra)  # fmt: skip
            curves.append(val_top1(out)[: a.epochs])
        finals = [c[-1] for c in curves]
        results[name] = {
            "val_top1_per_epoch": {
                s: [round(x, 4) for x in c] for s, c in zip(a.seeds, curves, strict=True)
            },
            "final_val_top1": [round(x, 4) for x in finals],
            "mean_final_val_top1": round(statistics.mean(finals), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
    native = float(results["avsynth_native"]["mean_final_val_top1"])  # type: ignore[arg-type]
    report = {
        "what": "val top-1 after the same epochs and seeds: native AVSynth path vs the same "
        "clips as class folders and as a CSV list (offline.data.sources)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "arch": "avslowfast_tiny",
        "machine": {"python": platform.python_version(), "cores_used": a.threads},
        "results": results,
        "difference_points": {
            k: round(100 * (float(r["mean_final_val_top1"]) - native), 2)  # type: ignore[arg-type]
            for k, r in results.items()
            if k != "avsynth_native"
        },
    }
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["results"], indent=2), report["difference_points"])


if __name__ == "__main__":
    main()
