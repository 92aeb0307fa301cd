"""Collect the fine-tuning vs from-scratch comparison (issue: "your own videos") into
docs/results/finetune_four.json from the two runs' training logs.

The runs (4 labels derived from AVSynth by merging each pair: ball, spinner, slider, drifter;
400 training clips from short_train, 160 validation clips from short_val, avslowfast_tiny,
crop 64, batch 16, 2 threads, seed 0):

    avserve train avslowfast --data data/four/train.csv --val-data data/four/val.csv \
        --out runs/four_finetune --epochs 4 --lr 0.01 --warmup-epochs 0 --init models/zoo/avsynth ...
    avserve train avslowfast --data data/four/train.csv --val-data data/four/val.csv \
        --out runs/four_scratch --epochs 12 --lr 0.05 ...

    python scripts/collect_finetune.py runs/four_finetune runs/four_scratch
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def curve(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [round(float(r["top1"]), 4) for r in rows if r.get("event") == "eval"]


def first_epoch(acc: list[float], target: float) -> int | None:
    return next((i + 1 for i, a in enumerate(acc) if a >= target), None)


def main(finetune: Path, scratch: Path) -> None:
    ft, sc = curve(finetune), curve(scratch)
    targets = [0.9, 0.95, max(ft)]
    out = {
        "finetune": {"run": str(finetune), "val_top1_per_epoch": ft},
        "scratch": {"run": str(scratch), "val_top1_per_epoch": sc},
        "epochs_to": [
            {"target": t, "finetune": first_epoch(ft, t), "scratch": first_epoch(sc, t)}
            for t in targets
        ],
    }
    path = ROOT / "docs" / "results" / "finetune_four.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
