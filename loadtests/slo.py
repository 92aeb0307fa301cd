"""Judge a Locust run by its profile's SLOs: Locust's ``*_stats.csv`` in, a pass/fail summary out.

- error rate = failures / requests, over every row except the shed rows (``... [429 shed]``):
  a 429 is the server saying "full, retry later", the answer the admission design intends,
  and is reported as ``shed`` instead;
- p50 / p95 / p99 per request name against the profile's limits. Locust keeps response
  times in buckets (2 significant digits above 100 ms), so percentiles are good to ~1-5%.

    python -m loadtests.slo out/run_stats.csv --profile short   # exit 1 when an SLO fails
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from loadtests.profiles import SHED_SUFFIX, Profile, get_profile

_PCT = {"p50_ms": "50%", "p95_ms": "95%", "p99_ms": "99%"}


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:  # Locust writes "N/A" for a row without samples
        return None


def read_stats(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of a Locust stats CSV by request name (the ``Aggregated`` row left out)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["Name"] == "Aggregated":
            continue
        row = {
            "requests": int(r["Request Count"]),
            "failures": int(r["Failure Count"]),
            "rps": _number(r["Requests/s"]),
            **{k: _number(r[col]) for k, col in _PCT.items()},
        }
        seen = out.get(r["Name"])
        if seen is not None:  # one name under two methods: counts add, the bigger row's tail
            big = seen if seen["requests"] >= row["requests"] else row
            row = {
                **big,
                "requests": seen["requests"] + row["requests"],
                "failures": seen["failures"] + row["failures"],
            }
        out[r["Name"]] = row
    return out


def check(stats: dict[str, dict[str, Any]], profile: Profile) -> dict[str, Any]:
    """The summary: counts, error rate, every SLO check with its value and limit, ``passed``."""
    served = {n: r for n, r in stats.items() if not n.endswith(SHED_SUFFIX)}
    shed = sum(r["requests"] for n, r in stats.items() if n.endswith(SHED_SUFFIX))
    requests = sum(r["requests"] for r in served.values())
    failures = sum(r["failures"] for r in served.values())
    error_rate = failures / requests if requests else 1.0
    checks: list[dict[str, Any]] = [
        {
            "name": "all",
            "metric": "error_rate",
            "value": round(error_rate, 5),
            "limit": profile.max_error_rate,
            "ok": requests > 0 and error_rate <= profile.max_error_rate,
        }
    ]
    for name, slo in profile.slos.items():
        row = served.get(name)
        for metric in _PCT:
            limit = getattr(slo, metric)
            if limit is None:
                continue
            value = None if row is None else row[metric]
            # A name with no answered request cannot meet its SLO: nothing was measured.
            ok = value is not None and row is not None and row["requests"] > 0 and value <= limit
            checks.append(
                {"name": name, "metric": metric, "value": value, "limit": limit, "ok": ok}
            )
    return {
        "profile": profile.name,
        "passed": all(c["ok"] for c in checks),
        "requests": requests,
        "failures": failures,
        "shed_429": shed,
        "error_rate": round(error_rate, 5),
        "rows": stats,
        "checks": checks,
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"profile {summary['profile']}: {'PASS' if summary['passed'] else 'FAIL'} "
        f"({summary['requests']} requests, {summary['failures']} failed, "
        f"{summary['shed_429']} shed with 429)"
    ]
    for c in summary["checks"]:
        lines.append(
            f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']:<30} {c['metric']:<10} "
            f"{c['value']} (limit {c['limit']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stats_csv", type=Path)
    p.add_argument("--profile", default="short")
    p.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = p.parse_args(argv)
    summary = check(read_stats(args.stats_csv), get_profile(args.profile))
    print(format_summary(summary))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
