"""Rich tables of the evaluation reports (printed by ``avserve eval``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _acc(a: dict[str, Any]) -> str:
    lo, hi = a["ci95"]
    return f"{_pct(a['top1'])} [{_pct(lo)}-{_pct(hi)}]"


def short_tables(report: dict[str, Any]) -> list[Table]:
    models = report["models"]
    main = Table(title=f"AVSynth short clips: {report['clips']} clips, centre view")
    for col in ("model", "pathways", "top-1 % [95% CI]", "GMACs/clip", "ms/clip (decode+model)"):
        main.add_column(col)
    for name, r in models.items():
        main.add_row(
            name,
            "+".join(r["pathways"]),
            _acc(r["overall"]),
            f"{r['gmacs_per_clip']:.4f}",
            f"{r['wall_ms_per_clip']:.1f} ({r['decode_ms_per_clip']:.1f}+{r['model_ms_per_clip']:.1f})",
        )
    pairs = Table(title="Class pairs: top-1 % (binary within the pair %)")
    pairs.add_column("pair (differs in)")
    for name in models:
        pairs.add_column(name)
    first = next(iter(models.values()))
    for pair, p in first["pairs"].items():
        cells = [
            f"{_pct(m['pairs'][pair]['top1'])} ({_pct(m['pairs'][pair]['binary']['top1'])})"
            for m in models.values()
        ]
        pairs.add_row(f"{pair}: {'/'.join(p['classes'])} ({p['differs_in']})", *cells)
    per_class = Table(title="Per-class top-1 %")
    per_class.add_column("class")
    for name in models:
        per_class.add_column(name)
    for cls in report["class_names"]:
        per_class.add_row(cls, *(_pct(m["per_class"][cls]["top1"]) for m in models.values()))
    return [main, pairs, per_class]


def long_table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"AVSynth long videos: {report['videos']} videos, dense-30 = "
        f"{report['dense30_gmacs']:.3f} GMACs/video"
    )
    for col in ("policy", "K", "top-1 % [95% CI]", "GMACs/video", "% of dense", "ms/video",
                "hit %", "box hit %"):  # fmt: skip
        table.add_column(col)
    for r in report["results"]:
        table.add_row(
            r["policy"],
            "30 views" if r["k"] is None else str(r["k"]),
            _acc(r),
            f"{r['gmacs_per_video']:.3f}",
            f"{r['pct_of_dense_gmacs']:.1f}",
            f"{r['wall_ms_per_video']:.0f}",
            _pct(r["hit_rate"]) if "hit_rate" in r else "",
            _pct(r["box_hit_rate"]) if "box_hit_rate" in r else "",
        )
    return table
