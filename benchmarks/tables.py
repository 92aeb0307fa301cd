"""Markdown tables of docs/benchmarks.md, rendered from the committed bench-results/*.json.

Pure functions of a result dict (no torch, no I/O): ``scripts/render_results.py`` calls them
for every ``<!-- results:NAME:start -->`` section and ``tests/test_docs_results.py`` fails when
a page and its JSON disagree. Every section opens with the machine line of its own JSON, so
a table never outlives the description of where it was measured.
"""

from __future__ import annotations

from typing import Any


def machine_line(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    load = m.get("loadavg_at_start")
    parts = [
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores",
        f"Python {m.get('python', '?')}, torch {m.get('torch', '?')}",
    ]
    if m.get("torch_threads") is not None:
        parts.append(f"{m['torch_threads']} torch threads")
    if load:
        end = m.get("loadavg_at_end")
        span = f"{load[0]:.1f}" + (f" → {end[0]:.1f}" if end else "")
        parts.append(f"load average {span} (shared machine)")
    return "*Measured on: " + "; ".join(parts) + ".*\n\n"


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def models(r: dict[str, Any]) -> str:
    lines = [
        "| config | params (inference) | GMACs @224 | GMACs @256 |",
        "|---|---|---|---|",
    ]
    for c in r["configs"]:
        lines.append(
            f"| `{c['arch']}` | {c['params_inference'] / 1e6:.2f}M | {_f(c['gmacs_224'])} | "
            f"{_f(c['gmacs_256'])} |"
        )
    lines += ["", "| CPU eager forward, batch 1 | ms |", "|---|---|"]
    lines += [f"| `{k}` | {v * 1000:.0f} |" for k, v in r["cpu_latency_b1_s"].items()]
    if r.get("parity"):
        lines += [
            "",
            "| parity with the authors' code | logits max abs diff | probs max abs diff |",
        ]
        lines.append("|---|---|---|")
        for name, p in r["parity"].items():
            lines.append(
                f"| `{name}` | {p['max_abs_logit_diff']:.1e} | {p['max_abs_prob_diff']:.1e} |"
            )
    return machine_line(r) + "\n".join(lines)


def policies(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}.\n",
        "| policy | K | wall s | × faster than dense | GMACs | % of dense GMACs |",
        "|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['policy']} | {x['k']} | {x['wall_s']:.2f} | {x['speedup_vs_dense']:.1f} | "
            f"{x['gmacs']:.1f} | {100 * x['fraction_of_dense_gmacs']:.1f} |"
        )
    return machine_line(r) + "\n".join(lines)


def queue(r: dict[str, Any]) -> str:
    lines = [
        f"{r['items']} items, no-op processor, concurrency 8.\n",
        "| backend | submit items/s | drain items/s | 1-item job p50 ms | p95 ms |",
        "|---|---|---|---|---|",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['backend']} | {x['submit_items_per_s']:,.0f} | {x['drain_items_per_s']:,.0f} | "
            f"{x['latency_ms_p50']:.1f} | {x['latency_ms_p95']:.1f} |"
        )
    return machine_line(r) + "\n".join(lines)


def admission(r: dict[str, Any]) -> str:
    lines = [
        "| body (in process, per ASGI call, best of 3) | bare µs | guarded µs | added µs |",
        "|---|---|---|---|",
    ]
    for x in r["asgi"]:
        lines.append(
            f"| {x['body']} | {x['bare_us']:.1f} | {x['guarded_us']:.1f} | {x['delta_us']:+.1f} |"
        )
    lines += [
        "",
        "| uvicorn on loopback, sequential 64 KiB uploads | p50 ms | p95 ms | answered 200 |",
    ]
    lines.append("|---|---|---|---|")
    for x in r["loopback"]:
        lines.append(f"| {x['case']} | {x['p50_ms']:.2f} | {x['p95_ms']:.2f} | {x['ok']} |")
    return machine_line(r) + "\n".join(lines)


def first_request(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}.\n",
        "| pipeline warm-up | start-up s | 1st request s | next requests s (mean) |",
        "|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {'on' if x['warmup'] else 'off'} | {x['startup_s']:.2f} | "
            f"{x['first_request_s']:.2f} | {x['next_requests_mean_s']:.2f} |"
        )
    return machine_line(r) + "\n".join(lines)


def peers_serving(r: dict[str, Any]) -> str:
    rows = {(x["model"], x["server"], x["concurrency"]): x for x in r["rows"]}
    lines = [
        f"{r['what']}; LitServe {r['machine'].get('litserve', '?')}.\n",
        "| model | conc. | avserve req/s | LitServe req/s | avserve / LitServe | p50 ms avserve / "
        "LitServe | p99 ms avserve / LitServe | mean batch avserve / LitServe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for q in r["ratios"]:
        a = rows[(q["model"], "avserve", q["concurrency"])]
        b = rows[(q["model"], "litserve", q["concurrency"])]
        lines.append(
            f"| {q['model']} | {q['concurrency']} | {a['throughput_rps']:.2f} | "
            f"{b['throughput_rps']:.2f} | **{q['throughput_ratio']:.2f}×** | "
            f"{a['p50_ms']:.0f} / {b['p50_ms']:.0f} | {a['p99_ms']:.0f} / {b['p99_ms']:.0f} | "
            f"{a['mean_batch']:.1f} / {b['mean_batch']:.1f} |"
        )
    goal = "met" if r["goal_avserve_ge_litserve"] else "not met"
    lines.append(f"\nGoal avserve ≥ 1.0× LitServe's throughput at every concurrency: **{goal}**.")
    return machine_line(r) + "\n".join(lines)


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


def loadtest(r: dict[str, Any]) -> str:
    p = r["profile_settings"]
    stages = ", ".join(f"{s['duration_s']:.0f} s at {s['rate_rps']:.2f}/s" for s in p["stages"])
    mix = ", ".join(f"{k} {v:.0%}" for k, v in p["mix"].items())
    lines = [
        f"Profile `{r['profile']}`: Poisson arrivals {stages}, then {p['drain_s']:.0f} s drain; "
        f"mix {mix}; policy `{p['policy']}`. **{'PASS' if r['passed'] else 'FAIL'}**: "
        f"{r['requests']} requests, {r['failures']} failed (error rate {r['error_rate']:.2%}), "
        f"{r['shed_429']} shed with 429.\n",
        "| request | count | failures | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in r["rows"].items():
        lines.append(
            f"| {name} | {x['requests']} | {x['failures']} | {_f(x['p50_ms'], 0)} | "
            f"{_f(x['p95_ms'], 0)} | {_f(x['p99_ms'], 0)} |"
        )
    lines += ["", "| SLO | value | limit | met |", "|---|---|---|---|"]
    for c in r["checks"]:
        lines.append(
            f"| {c['name']} {c['metric']} | {c['value']} | {c['limit']} | "
            f"{'yes' if c['ok'] else '**no**'} |"
        )
    return machine_line(r) + "\n".join(lines)


# Section name -> (result file under the repository root, renderer).
BENCH_TABLES = {
    "bench_models": ("bench-results/models.json", models),
    "bench_policies": ("bench-results/policies.json", policies),
    "bench_queue": ("bench-results/queue.json", queue),
    "bench_admission": ("bench-results/admission.json", admission),
    "bench_first_request": ("bench-results/first_request.json", first_request),
    "bench_peers_serving": ("bench-results/peers_serving.json", peers_serving),
    "bench_peers_pytorchvideo": ("bench-results/peers_pytorchvideo.json", peers_pytorchvideo),
    "loadtest": ("docs/loadtest/summary.json", loadtest),
}
