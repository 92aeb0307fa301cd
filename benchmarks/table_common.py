"""What every table of docs/benchmarks.md starts with: the machine line, and number formatting."""

from __future__ import annotations

from typing import Any


def machine_line(r: dict[str, Any], threads: bool = True) -> str:
    m = r.get("machine", {})
    load = m.get("loadavg_at_start")
    parts = [
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores",
        f"Python {m.get('python', '?')}, torch {m.get('torch', '?')}",
    ]
    if threads and m.get("torch_threads") is not None:
        parts.append(f"torch threads: {m['torch_threads']}")
    if load:
        end = m.get("loadavg_at_end")
        span = f"{load[0]:.1f}" + (f" → {end[0]:.1f}" if end else "")
        parts.append(f"load average {span} (shared machine)")
    return "*Measured on: " + "; ".join(parts) + ".*\n\n"


def or_dash(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, or a dash where nothing was measured."""
    return "–" if x is None else f"{x:.{digits}f}"
