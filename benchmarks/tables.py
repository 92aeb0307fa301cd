"""Markdown tables of docs/benchmarks.md, rendered from the committed bench-results/*.json.

Pure functions of a result dict (no torch, no I/O): ``scripts/render_results.py`` calls them
for every ``<!-- results:NAME:start -->`` section and ``tests/test_docs_results.py`` fails when
a page and its JSON disagree. Every section opens with the machine line of its own JSON, so
a table never outlives the description of where it was measured.
"""

from __future__ import annotations

from typing import Any

from benchmarks.peer_tables import peers_pytorchvideo, peers_serving
from benchmarks.table_common import machine_line, or_dash

__all__ = ["BENCH_TABLES", "machine_line"]


def models(r: dict[str, Any]) -> str:
    lines = [
        "| config | params (inference) | GMACs @224 | GMACs @256 |",
        "|---|---|---|---|",
    ]
    for c in r["configs"]:
        lines.append(
            f"| `{c['arch']}` | {c['params_inference'] / 1e6:.2f}M | {or_dash(c['gmacs_224'])} | "
            f"{or_dash(c['gmacs_256'])} |"
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


def loadtest(r: dict[str, Any]) -> str:
    p = r["profile_settings"]
    stages = ", ".join(f"{s['duration_s']:.0f} s at {s['rate_rps']:.2f}/s" for s in p["stages"])
    mix = ", ".join(f"{k} {v:.0%}" for k, v in p["mix"].items())
    lines = [
        f"Profile `{r['profile']}`: Poisson arrivals {stages}, then {p['drain_s']:.0f} s drain; "
        f"mix {mix}; policy `{p['policy']}`. **{'PASS' if r['passed'] else 'FAIL'}**: "
        f"{r['requests']} requests, {r['failures']} failed (error rate {r['error_rate']:.2%}), "
        f"{r['shed_429']} shed with 429. Arrivals sent: "
        + ", ".join(f"{k} {v}" for k, v in r.get("arrivals_sent", {}).items())
        + ". Gateway settings: "
        + (", ".join(f"`{k}={v}`" for k, v in r.get("gateway_env", {}).items()) or "defaults")
        + ".\n",
        "| request | count | failures | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in r["rows"].items():
        lines.append(
            f"| {name} | {x['requests']} | {x['failures']} | {or_dash(x['p50_ms'], 0)} | "
            f"{or_dash(x['p95_ms'], 0)} | {or_dash(x['p99_ms'], 0)} |"
        )
    lines += ["", "| SLO | value | limit | met |", "|---|---|---|---|"]
    for c in r["checks"]:
        lines.append(
            f"| {c['name']} {c['metric']} | {c['value']} | {c['limit']} | "
            f"{'yes' if c['ok'] else '**no**'} |"
        )
    # The machine's torch threads are the load generator's, not the gateway's: left out.
    return machine_line(r, threads=False) + "\n".join(lines)


def model_thread(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}.\n",
        "| runtime | one thread only (reference) ms | torch on several threads (before) ms | "
        "served (model thread) ms | served / reference |",
        "|---|---|---|---|---|",
    ]
    for kind, x in r["summary"].items():
        lines.append(
            f"| {kind} | {x['reference_ms']:.1f} | {x['legacy_ms']:.1f} | {x['served_ms']:.1f} | "
            f"{x['served_vs_reference']:.2f} |"
        )
    return machine_line(r) + "\n".join(lines)


def malloc_faults(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}.\n",
        "| model | batch | glibc defaults ms | tuned ms | tuned / defaults | "
        "page faults per forward, defaults | tuned |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["summary"]:
        lines.append(
            f"| {x['model']} | {x['batch']} | {x['defaults_ms']:.1f} | {x['tuned_ms']:.1f} | "
            f"{x['tuned_vs_defaults']:.2f} | {x['defaults_faults']:.0f} | {x['tuned_faults']:.0f} |"
        )
    return machine_line(r) + "\n".join(lines)


def media(r: dict[str, Any]) -> str:
    if "loadavg_at_start" not in r.get("machine", {}) and "load_before" in r:
        r = {
            **r,
            "machine": {**r["machine"], "loadavg_at_start": r["load_before"]["loadavg_1_5_15"]},
        }
    lines = [
        "| video (keyframe every) | scenario | wall s | % of full | CPU s | CPU % of full | "
        "before (baseline tree) % of full |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, v in r["videos"].items():
        base = v.get("baseline_scenarios", {})
        for name, x in v["scenarios"].items():
            b = base.get(name)
            before = "–" if b is None else f"{100 * b['fraction_of_full']:.1f}"
            lines.append(
                f"| {label} ({v['gop_frames']} frames) | {name} | {x['seconds']:.2f} | "
                f"{100 * x['fraction_of_full']:.1f} | {x['cpu_seconds']:.2f} | "
                f"{100 * x['cpu_fraction_of_full']:.1f} | "
                f"{before} |"
            )
    lines.append("")
    for label, v in r["videos"].items():
        g = v.get("goal_met", {})
        plan = v.get("decode_plan", {}).get("glance", {})
        lines.append(
            f"- {label}: goal glance + 3 windows ≤ {100 * v['goal_fraction']:.0f} % of a full "
            f"decode: wall {'met' if g.get('wall') else '**not met**'}, CPU "
            f"{'met' if g.get('cpu') else '**not met**'}; glance plan "
            f"`{plan.get('strategy', '?')}` over {plan.get('gops', '?')} GOPs"
        )
    if "baseline" in r.get("trees", {}):
        lines.append(f'- baseline tree ("before" column): {r["trees"]["baseline"]}')
    return machine_line(r) + "\n".join(lines)


def long_video(r: dict[str, Any]) -> str:
    lines = [
        f"{r['what']}.\n",
        "| minutes | MB | policy (K) | wall s | decode s | decode × vs 1 min | peak RSS gateway MB "
        "| peak RSS decode workers MB | peak RSS total MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['minutes']} | {x['file_mb']:.1f} | {x['policy']} ({x['k']}) | "
            f"{x['wall_s']:.1f} | {x['decode_ms'] / 1000:.1f} | {x['decode_vs_first']:.2f} | "
            f"{x['peak_rss_gateway_mb']:.0f} | {x['peak_rss_workers_mb']:.0f} | "
            f"{x['peak_rss_total_mb']:.0f} |"
        )
    sm = r["summary"]
    lines.append(
        f"\nPeak RSS {sm['peak_rss_total_mb']:.0f} MB (goal ≤ {sm['rss_goal_mb']:.0f} MB: "
        f"{'met' if sm['rss_goal_met'] else '**not met**'}); decode time grew "
        f"{sm['decode_growth']:.2f}× for {sm['duration_growth']:.0f}× the duration "
        f"({'sub-linear' if sm['sublinear'] else '**not sub-linear**'})."
    )
    return machine_line(r) + "\n".join(lines)


def scaling(r: dict[str, Any]) -> str:
    lines = [
        f"Load ramp on `{r['video']}` ({r['shared_machine']}); gateway settings "
        + ", ".join(f"`{k}={v}`" for k, v in r.get("server_env", {}).items())
        + ".\n",
        "| signal | peak | first rise after load s | idle again after last response s | "
        "rose within one Prometheus scrape |",
        "|---|---|---|---|---|",
    ]
    for name, x in r["summary"].items():
        lines.append(
            f"| `{name}` | {x['peak']:g} | {x['first_rise_after_s']:.1f} | "
            f"{x['idle_again_after_last_response_s']:.1f} | "
            f"{'yes' if x['rose_within_one_prometheus_scrape'] else 'no'} |"
        )
    return machine_line(r) + "\n".join(lines)


def startup(r: dict[str, Any]) -> str:
    names = {
        "import_torch_s": "`import torch` alone",
        "help_s": "`avserve --help`",
        "classify_s": "`avserve classify` one short file",
        "serve_ready_s": "`avserve serve` to ready",
    }
    lines = [
        f"{r['what']}.\n",
        "| measure | median wall s | best wall s | median CPU s | goal s |",
        "|---|---|---|---|---|",
    ]
    for key, x in r["rows"].items():
        goal = "–"
        if "goal_s" in x:
            goal = f"≤ {x['goal_s']:g} ({'met' if x['goal_met'] else '**not met**'})"
        lines.append(
            f"| {names.get(key, key)} | {x['median_wall_s']:.2f} | {x['min_wall_s']:.2f} | "
            f"{x['median_cpu_s']:.2f} | {goal} |"
        )
    return machine_line(r) + "\n".join(lines)


def serving(r: dict[str, Any]) -> str:
    b = r["batcher"]
    lines = [
        f"`{r['model']['name']}` {r['model']['version']}, runtime `{b['runtime']}`, "
        f"{b['requests']} requests of K clips, max batch {b['max_batch_size']}, best of "
        f"{b['rounds']} rounds.\n",
        "| K | batching | conc. | clips/s | vs offline batched | p50 ms | p99 ms | mean batch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in b["rows"]:
        lines.append(
            f"| {x['k']} | {x['batching']} | {x['concurrency']} | {x['clips_per_s']:.1f} | "
            f"{x['clips_per_s'] / x['offline_clips_per_s']:.0%} | {x['p50_ms']:.0f} | "
            f"{x['p99_ms']:.0f} | {x['mean_batch']:.1f} |"
        )
    g = r["goals"]
    lines.append("")
    for k, x in g.items():
        if isinstance(x, dict):
            lines.append(
                f"- {k}: at concurrency 16 batching on/off {x['on_vs_off_at_16']:.2f}× (goal "
                f"≥ {g['on_vs_off_goal']}×), served/offline {x['served_vs_offline_at_16']:.0%} "
                f"(goal ≥ {g['served_vs_offline_goal']:.0%})"
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
    "bench_peers_serving_r50": ("bench-results/peers_serving_r50.json", peers_serving),
    "bench_peers_pytorchvideo": ("bench-results/peers_pytorchvideo.json", peers_pytorchvideo),
    "loadtest": ("docs/loadtest/summary.json", loadtest),
    "bench_model_thread": ("bench-results/model_thread.json", model_thread),
    "bench_malloc": ("bench-results/malloc_faults.json", malloc_faults),
    "bench_media": ("bench-results/media.json", media),
    "bench_long_video": ("bench-results/long_video.json", long_video),
    "bench_scaling": ("bench-results/scaling.json", scaling),
    "bench_startup": ("bench-results/startup.json", startup),
    "bench_serving": ("bench-results/serving.json", serving),
}
