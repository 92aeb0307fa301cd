"""Turn the stage log of ``scripts/make_model.sh`` into a result file: where the time went.

``make_model.sh`` appends ``<epoch seconds>\\t<stage>`` when each stage begins, the last line
when it is done; this writes ``make_model_time.json`` (stage, seconds, minutes; total; the
machine) for ``scripts/render_results.py`` to render in docs/avsynth.md, so the time the docs
quote is the one a run measured (issue 11: ``make model`` within 90 minutes on 2 cores).

    python scripts/make_model_time.py runs/make_model_stages.tsv docs/results/make_model_time.json \\
        --recipe "EPOCHS=20 ..."
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages are importable
from offline.provenance import machine  # noqa: E402 (after the path set-up)

GOAL_MINUTES = 90


def read_stages(tsv: Path) -> list[tuple[int, str]]:
    marks = []
    for line in tsv.read_text().splitlines():
        stamp, _, stage = line.partition("\t")
        if line.strip():
            marks.append((int(stamp), stage))
    if len(marks) < 2:
        raise SystemExit(f"{tsv}: need a start and an end mark, found {len(marks)}")
    return marks


def summarise(marks: list[tuple[int, str]], recipe: str) -> dict[str, Any]:
    stages = [
        {"stage": stage, "seconds": end - start, "minutes": round((end - start) / 60, 1)}
        for (start, stage), (end, _) in itertools.pairwise(marks)
    ]
    total = marks[-1][0] - marks[0][0]
    info = machine()
    info["loadavg_at_end"] = info.pop("loadavg_at_start")  # read after the run, not before
    return {
        "what": "wall time of each stage of scripts/make_model.sh in one run; the first stage "
        "is ~0 when the data sets were already there",
        "recipe": recipe,
        "started_utc": dt.datetime.fromtimestamp(marks[0][0], dt.UTC).isoformat(),
        "stages": stages,
        "result": marks[-1][1],
        "total_seconds": total,
        "total_minutes": round(total / 60, 1),
        "goal_minutes": GOAL_MINUTES,
        "meets_goal": total <= GOAL_MINUTES * 60,
        "machine": info,
        "cpus_usable": len(os.sched_getaffinity(0)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stages", type=Path, help="the stage log make_model.sh wrote")
    p.add_argument("out", type=Path, help="the JSON to write")
    p.add_argument("--recipe", default="", help="the settings of the run, as one line")
    a = p.parse_args(argv)
    result = summarise(read_stages(a.stages), a.recipe)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"make model: {result['total_minutes']} min ({a.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
