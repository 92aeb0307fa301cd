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
    return [main, pairs, per_class] if first["pairs"] else [main, per_class]


def long_table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"AVSynth long videos: {report['videos']} videos, dense-30 = "
        f"{report['dense30_gmacs']:.3f} GMACs/video"
    )
    for col in ("policy", "K", "top-1 % [95% CI]", "GMACs/video", "% of dense", "ms/video",
                "hit %", "box hit %", "abstained %"):  # fmt: skip
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
            _pct(r["abstain_rate"]) if "abstain_rate" in r else "",
        )
    return table


def honesty_table(report: dict[str, Any]) -> Table:
    rules = report["rules"]
    table = Table(
        title=f"{report['model']['name']} {report['model']['version']} on {report['clips']} "
        f"clips ({report['background_clips']} background): T = {rules['temperature']}, "
        f"min_confidence = {rules['min_confidence']}"
    )
    table.add_column("measure")
    table.add_column("% [95% CI] or value")
    silent = report["silent"]
    rows = [
        ("top-1 on class clips", _acc(report["top1"])),
        ("known and correct", _acc(report["known_and_correct"])),
        ("false abstention (class clips)", _acc(report["false_abstention"])),
        ("abstention on background clips", _acc(report["background_abstention"])),
        ("ECE (uncalibrated -> calibrated)", f"{report['ece_uncalibrated']} -> {report['ece']}"),
        ("no audio: max sound-class score", str(silent["max_sound_class_score"])),
        ("no audio: sound-class clips abstained", _acc(silent["sound_class_clips_abstained"])),
        ("no audio: visual-class top-1", _acc(silent["visual_class_top1"])),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def ood_table(report: dict[str, Any]) -> Table:
    table = Table(
        title=f"{report['model']['name']} on {report['files']} out-of-domain files "
        f"({report['answered']} answered, {report['errors']} refused by the media layer): "
        f"abstained {_acc(report['abstained'])} %"
    )
    for col in ("file", "verdict", "reason", "top label", "score", "audio", "error"):
        table.add_column(col, overflow="fold")
    for r in report["per_file"]:
        table.add_row(
            r["file"], r.get("verdict", ""), r.get("reason") or "", r.get("top_label", ""),
            f"{r['top_score']:.3f}" if "top_score" in r else "", r.get("audio", ""),
            r.get("error", ""),
        )  # fmt: skip
    return table
