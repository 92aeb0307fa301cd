"""What dense-30 can see of a long AVSynth video's event, and what each package got right there.

Writes docs/results/dense_coverage.json (scripts/render_results.py turns it into the table of
docs/avsynth.md): the best dense clip's event fill over ``--specs`` long test specs of the
generator (the spec alone, nothing rendered), and for the ``long_test`` videos (file index i is
spec i of the same seeds) each evaluated package's dense-30 outcome per fill bucket, read from
its ``eval_long.json``::

    .venv/bin/python scripts/dense_coverage.py
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from offline.data.avsynth.generate import clip_seed
from offline.data.avsynth.scene import sample_spec
from offline.evaluation.coverage import (
    BEST_FILL_BUCKETS,
    EventTiming,
    accuracy_by_bucket,
    best_dense_fill,
    bucket_shares,
    package_result_folders,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
FILE_INDEX = re.compile(r"long-test-(\d+)\.mp4$")


def timing(index: int, base_seed: int) -> EventTiming:
    spec = sample_spec(clip_seed("test", base_seed, index), "long")
    return EventTiming(spec.duration_s, spec.event_start_s, spec.event_end_s)


def clip_seconds() -> float:
    pre = json.loads((ROOT / "models" / "zoo" / "avsynth" / "config.json").read_text())
    p = pre["preprocessing"]
    return float(p["num_frames"] * p["sampling_rate"] / p["target_fps"])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=2000, help="long test specs to measure")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the test sets")
    ap.add_argument("--out", type=Path, default=RESULTS / "dense_coverage.json")
    a = ap.parse_args(argv)
    clip_s = clip_seconds()
    fills = [best_dense_fill(timing(i, a.seed), clip_s) for i in range(a.specs)]
    packages = {}
    for folder in package_result_folders(RESULTS):
        name, path = folder.name, folder / "eval_long.json"
        if not path.is_file():
            continue
        ev = json.loads(path.read_text())
        rows = ev["per_video"]["dense"]
        idx = [int(FILE_INDEX.search(r["file"]).group(1)) for r in rows]  # type: ignore[union-attr]
        video_fills = [best_dense_fill(timing(i, a.seed), clip_s) for i in idx]
        packages[name] = {
            "version": ev["model"]["version"],
            "videos": len(rows),
            "by_bucket": accuracy_by_bucket(video_fills, [bool(r["correct"]) for r in rows]),
        }  # fmt: skip
    result = {
        "what": "best dense-30 clip's event fill (share of the clip the event covers)",
        "clip_s": round(clip_s, 4),
        "num_clips": 10,
        "specs": {"split": "long", "subset": "test", "seed": a.seed, "count": a.specs},
        "buckets": [name for name, _, _ in BEST_FILL_BUCKETS],
        "spec_shares": bucket_shares(fills),
        "packages": packages,
    }
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["spec_shares"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
