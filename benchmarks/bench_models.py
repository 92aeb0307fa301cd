"""Benchmark of the AVSlowFast models: params, GMACs, CPU latency, parity with the official code.

Run: ``python -m benchmarks.bench_models`` (or ``make bench``). Writes bench-results/models.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine
from models import build_model, get_config, import_pyslowfast, list_configs, model_gmacs
from models.flops import count_params

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "models.json"


def latency_s(name: str, crop: int, repeats: int = 3) -> float:
    """Median eager CPU forward time at batch 1 (after one warm-up run)."""
    model = build_model(name, training_parts=False).eval()
    inputs = [torch.randn(s) for s in model.config.input_shapes(crop).values()]
    times = []
    with torch.inference_mode():
        model(*inputs)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parity() -> dict[str, dict[str, float]]:
    fixtures = Path(os.environ.get("AVSERVE_SHARED_DIR", REPO.parent / "shared")) / "fixtures"
    out = {}
    for name in ("pyslowfast_avslowfast", "pyslowfast_slowfast"):
        folder = fixtures / name
        if not folder.is_dir():
            continue
        io = torch.load(folder / "io.pt", weights_only=True)
        inputs = [io["slow"].float(), io["fast"].float()]
        if "audio" in io:
            inputs.append(io["audio"].float().squeeze(2))
        model = import_pyslowfast(folder / "checkpoint.pyth").model.eval()
        with torch.no_grad():
            logits = model(*inputs)
        out[name] = {
            "max_abs_logit_diff": float((logits - io["logits"]).abs().max()),
            "max_abs_prob_diff": float((logits.softmax(-1) - io["probs"]).abs().max()),
        }
    return out


def main() -> None:
    rows: list[dict[str, Any]] = []
    for name in list_configs():
        c = get_config(name)
        rows.append(
            {
                "arch": name,
                **count_params(c),
                "gmacs_224": round(model_gmacs(c, 224), 3),
                "gmacs_256": round(model_gmacs(c, 256), 3),
            }
        )
    latency = {
        "avslowfast_r50_4x16@224": latency_s("avslowfast_r50_4x16", 224),
        "slowfast_r50_4x16@224": latency_s("slowfast_r50_4x16", 224),
        "avslowfast_tiny@64": latency_s("avslowfast_tiny", 64, repeats=10),
    }
    result: dict[str, Any] = {
        "machine": machine(),
        "configs": rows,
        "cpu_latency_b1_s": latency,
        "parity": parity(),
    }

    table = Table(title="AVSlowFast models (GMACs = 1e9 multiply-adds per clip)")
    table.add_column("arch", no_wrap=True)
    for col in ("params total (M)", "params inference (M)", "GMACs@224", "GMACs@256"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["arch"],
            f"{r['params_total'] / 1e6:.2f}",
            f"{r['params_inference'] / 1e6:.2f}",
            f"{r['gmacs_224']:.2f}",
            f"{r['gmacs_256']:.2f}",
        )
    console = Console()
    console.print(table)
    for k, v in latency.items():
        console.print(f"CPU eager forward, batch 1, {k}: {v * 1000:.0f} ms")
    parity_numbers: dict[str, dict[str, float]] = result["parity"]
    for name, numbers in parity_numbers.items():
        console.print(f"parity {name}: {numbers}")
    console.print(f"machine: {result['machine']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
