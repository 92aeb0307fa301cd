"""Tables of the peer comparisons (``make bench-peers``): LitServe and PyTorchVideo vs avserve.

Pure functions of a result dict, like ``benchmarks.tables`` (which lists them in
``BENCH_TABLES``).
"""

from __future__ import annotations

from typing import Any

from benchmarks.table_common import machine_line


def peers_serving(r: dict[str, Any]) -> str:
    rows = {(x["model"], x["server"], x["concurrency"]): x for x in r["rows"]}
    lines = [
        f"{r['what']}; LitServe {r['machine'].get('litserve', '?')}.\n",
        "| model | conc. | avserve req/s | LitServe req/s | avserve / LitServe | p50 ms avserve / "
        "LitServe | p99 ms avserve / LitServe | mean batch avserve / LitServe | model busy "
        "avserve / LitServe |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def busy(x: dict[str, Any]) -> str:
        return f"{x['model_busy']:.0%}" if "model_busy" in x else "–"

    for q in r["ratios"]:
        a = rows[(q["model"], "avserve", q["concurrency"])]
        b = rows[(q["model"], "litserve", q["concurrency"])]
        lines.append(
            f"| {q['model']} | {q['concurrency']} | {a['throughput_rps']:.2f} | "
            f"{b['throughput_rps']:.2f} | **{q['throughput_ratio']:.2f}×** | "
            f"{a['p50_ms']:.0f} / {b['p50_ms']:.0f} | {a['p99_ms']:.0f} / {b['p99_ms']:.0f} | "
            f"{a['mean_batch']:.1f} / {b['mean_batch']:.1f} | {busy(a)} / {busy(b)} |"
        )
    if r.get("quick"):
        lines.append("\n*A `--quick` harness check (few requests, one round), not a measurement.*")
    goal = "met" if r["goal_avserve_ge_litserve"] else "not met"
    lines.append(f"\nGoal avserve ≥ 1.0× LitServe's throughput at every concurrency: **{goal}**.")
    if "goal_latency_no_worse" in r:
        worse = [
            f"{q['concurrency']} ({name} {q[name + '_ratio']:.2f}×)"
            for q in r["ratios"]
            for name in ("p50", "p99")
            if q[name + "_ratio"] > 1.0
        ]
        goal = "met" if r["goal_latency_no_worse"] else "not met: " + ", ".join(worse)
        lines.append(f"p50 and p99 no worse than LitServe's at every concurrency: **{goal}**.")
    return machine_line(r) + "\n".join(lines) + _idle_line(r) + _spared_line(r) + _round_spread(r)


def _spared_line(r: dict[str, Any]) -> str:
    """How many of avserve's batches ran one torch thread short (if counted), best rounds."""
    rows = {(x["model"], x["server"], x["concurrency"]): x for x in r["rows"]}
    parts = []
    for q in r["ratios"]:
        a = rows[(q["model"], "avserve", q["concurrency"])]
        if "spared_batches" in a and "batches" in a:
            parts.append(f"c={q['concurrency']}: {a['spared_batches']} of {a['batches']}")
    if not parts:
        return ""
    return (
        "\n\navserve's batches run one torch thread short (`SpareThreadChoice`: full batches, "
        "when that is the cheaper), in the best rounds the table shows: " + "; ".join(parts) + "."
    )


def _idle_line(r: dict[str, Any]) -> str:
    """What each server costs the machine while nobody sends it anything (if measured)."""
    parts = [
        f"{model}: avserve {share['avserve']:.1%}, LitServe {share['litserve']:.1%}"
        for model, share in r.get("idle_cpu_share", {}).items()
        if None not in share.values()
    ]
    if not parts:
        return ""
    return (
        "\n\nIdle CPU, share of one core (each server with its workers, nobody sending): "
        + "; ".join(parts)
        + "."
    )


def _round_spread(r: dict[str, Any]) -> str:
    """Every round's throughput, where there were several: how much the best round decides."""
    rounds = [x for runs in r.get("rounds", {}).values() for x in runs]
    if len({x["round"] for x in rounds}) < 2:
        return ""
    lines = ["\n\nThroughput of every round (req/s, in round order), avserve | LitServe:"]
    for q in r["ratios"]:
        per = {
            server: ", ".join(
                f"{x['throughput_rps']:.1f}"
                for x in sorted(rounds, key=lambda x: x["round"])
                if (x["model"], x["server"], x["concurrency"])
                == (q["model"], server, q["concurrency"])
            )
            for server in ("avserve", "litserve")
        }
        lines.append(f"c={q['concurrency']}: {per['avserve']} | {per['litserve']}")
    return "\n".join(lines[:1]) + "\n" + "; ".join(lines[1:]) + "."


def peers_pytorchvideo(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}; PyTorchVideo {r['machine'].get('pytorchvideo', '?')}.\n",
        "| model | video | avserve glance s (K) | PyTorchVideo dense s (views) | of which model s "
        "| glance × faster |",
        "|---|---|---|---|---|---|",
    ]
    for label, s in r["models"].items():
        for x in s["rows"]:
            g, d = x["avserve_glance"], x["pytorchvideo_dense"]
            lines.append(
                f"| {label} | `{x['video']}` | {g['wall_s']:.2f} ({g['k']}) | "
                f"{d['wall_s']:.2f} ({d['views']}) | {d['model_s']:.2f} | {x['speedup']:.1f} |"
            )
    lines.append("")
    for label, s in r["models"].items():
        goal = "met" if s["goal_5x_met"] else "not met"
        lines.append(
            f"- {label}: median {s['median_speedup']:.1f}×, lowest {s['min_speedup']:.1f}× "
            f"(goal ≥ 5× on every video: **{goal}**)"
        )
    return machine_line(r) + "\n".join(lines)
