"""Render the measured tables of the docs from the committed result files.

Numbers in docs come from result files, never by hand: every table between
``<!-- results:NAME:start -->`` and ``<!-- results:NAME:end -->`` is produced here from
``docs/results/*.json`` (the JSON that ``avserve eval`` wrote) and, for docs/benchmarks.md,
``bench-results/*.json`` (what ``make bench`` wrote; ``benchmarks/tables.py``). Run it after
copying new results; ``tests/test_docs_results.py`` fails when a table and its JSON disagree.

    python scripts/render_results.py            # rewrite the tables in place
    python scripts/render_results.py --check    # exit 1 when a table is stale
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DOCS = [
    ROOT / "docs" / "avsynth.md",
    ROOT / "docs" / "own-videos.md",
    ROOT / "docs" / "benchmarks.md",
    ROOT / "docs" / "ablation.md",
]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages are importable
from benchmarks.tables import BENCH_TABLES  # noqa: E402 (after the path set-up)
from offline.evaluation.gate_tables import gate_table  # noqa: E402


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _acc(a: dict[str, Any]) -> str:
    lo, hi = a["ci95"]
    return f"{_pct(a['top1'])} [{_pct(lo)}–{_pct(hi)}] (n={a['n']})"


def honesty(r: dict[str, Any]) -> str:
    s = r["silent"]
    rows = [
        ("top-1 on class clips", _acc(r["top1"])),
        ("recognised and correct (verdict known, right label)", _acc(r["known_and_correct"])),
        ("false abstention on class clips", _acc(r["false_abstention"])),
        ("abstention on background clips", _acc(r["background_abstention"])),
        ("ECE, uncalibrated → calibrated", f"{r['ece_uncalibrated']} → {r['ece']}"),
        ("no audio: highest sound-defined class score", str(s["max_sound_class_score"])),
        ("no audio: sound-defined clips abstained", _acc(s["sound_class_clips_abstained"])),
        ("no audio: visual-class top-1", _acc(s["visual_class_top1"])),
    ]
    rules = r["rules"]
    head = (
        f"`{r['model']['name']}` {r['model']['version']} on `{Path(r['data']).name}` "
        f"({r['class_clips']} class clips, {r['background_clips']} background clips; "
        f"T = {rules['temperature']}, min_confidence = {rules['min_confidence']})\n\n"
    )
    return (
        head
        + "| measure | % [95% CI] or value |\n|---|---|\n"
        + "\n".join(f"| {a} | {b} |" for a, b in rows)
    )


def long(r: dict[str, Any]) -> str:
    lines = [
        f"`{r['model']['name']}` {r['model']['version']} on `{Path(r['data']).name}` "
        f"({r['videos']} videos; dense-30 = {r['dense30_gmacs']} GMACs/video)\n",
        "| policy | K | top-1 % [95% CI] | abstained % | GMACs/video | % of dense | hit % | box hit % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['policy']} | {'30 views' if x['k'] is None else x['k']} | {_acc(x)} | "
            f"{_pct(x.get('abstain_rate'))} | {x['gmacs_per_video']:.3f} | "
            f"{x['pct_of_dense_gmacs']:.1f} | {_pct(x.get('hit_rate'))} | "
            f"{_pct(x.get('box_hit_rate'))} |"
        )
    return "\n".join(lines)


def long_windows(r: dict[str, Any]) -> str:
    """The heavy model on each window alone, by how well the window holds the event."""
    lines = [
        "| policy | K | event fills | crop holds the event | windows | window right % [95% CI] "
        "| window says background % |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["results"]:
        if x["policy"] not in ("glance", "dense") or x["k"] not in (None, max(r_k(r))):
            continue
        for w in x.get("windows", []):
            box = {True: "yes", False: "no", None: "–"}[w["box_hit"]]
            lines.append(
                f"| {x['policy']} | {'30 views' if x['k'] is None else x['k']} | "
                f"{w['event_fill']} | {box} | {w['windows']} | {_acc(w)} | "
                f"{_pct(w['called_background'])} |"
            )
    return "\n".join(lines)


def r_k(r: dict[str, Any]) -> list[int]:
    return [x["k"] for x in r["results"] if x["k"] is not None] or [0]


def ood(r: dict[str, Any]) -> str:
    lines = [
        f"`{r['model']['name']}` {r['model']['version']}, policy `{r['policy']}`, on "
        f"`{Path(r['data']).name}/`: {r['files']} files, {r['answered']} answered, "
        f"{r['errors']} refused by the media layer; **abstained on {_acc(r['abstained'])} %** "
        f"of the answered files (no-audio files: {_acc(r['no_audio_abstained'])} %).\n",
        "| file | verdict | reason | top label (score) | audio | error |",
        "|---|---|---|---|---|---|",
    ]
    for x in r["per_file"]:
        top = f"{x['top_label']} ({x['top_score']:.3f})" if "top_label" in x else ""
        lines.append(
            f"| `{x['file']}` | {x.get('verdict', '')} | {x.get('reason') or ''} | {top} | "
            f"{x.get('audio', '')} | {x.get('error', '')} |"
        )
    return "\n".join(lines)


def own_videos(r: dict[str, Any]) -> str:
    """Native AVSynth path vs the same clips as class folders / a CSV list (measure_own_videos)."""
    seeds = r["settings"]["seeds"]
    names = {
        "avsynth_native": "AVSynth set (native path)",
        "class_folders": "same clips as class folders",
        "csv_list": "same clips as a CSV list",
    }
    lines = [
        "| training data | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | vs native |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for key, res in r["results"].items():
        diff = r["difference_points"].get(key)
        lines.append(
            f"| {names.get(key, key)} | "
            + " | ".join(f"{100 * x:.0f}" for x in res["final_val_top1"])
            + f" | {100 * res['mean_final_val_top1']:.1f} | "
            + ("" if diff is None else f"{diff:+.1f} points")
            + " |"
        )
    return "\n".join(lines)


def finetune(r: dict[str, Any]) -> str:
    """Fine-tuning the shipped package vs training from scratch (collect_finetune.py)."""
    ft, sc = r["finetune"]["val_top1_per_epoch"], r["scratch"]["val_top1_per_epoch"]
    n = max(len(ft), len(sc))

    def cells(acc: list[float]) -> str:
        return " | ".join([_pct(a) for a in acc] + ["–"] * (n - len(acc)))

    lines = [
        "| validation top-1 % after epoch | " + " | ".join(str(i + 1) for i in range(n)) + " |",
        "|---|" + "---|" * n,
        f"| fine-tuned from `avsynth` | {cells(ft)} |",
        f"| from scratch | {cells(sc)} |",
        "",
        "| target top-1 | epochs, fine-tuned | epochs, from scratch |",
        "|---|---|---|",
    ]
    for e in r["epochs_to"]:
        lines.append(
            f"| ≥ {_pct(e['target'])} % | {e['finetune'] or 'not reached'} | "
            f"{e['scratch'] or 'not reached'} |"
        )
    return "\n".join(lines)


def ablation(r: dict[str, Any]) -> str:
    """The paper's design ablations on AVSynth (offline/evaluation/ablation.py)."""
    rec = r["recipe"]
    lines = [
        f"{r['train_clips']} training clips, {rec['epochs']} epochs, batch {rec['batch_size']}, "
        f"crop {rec['crop_size']}, seed {rec['seed']}; test: {r['test_clips']} clips of other "
        f"seeds; 95% Wilson intervals. Sound pairs: top-1 on the two pairs that differ only in "
        f"sound (ball, spinner).\n",
        "| ablation | variant | top-1 % [95% CI] | sound pairs % | paper K400 top-1 | "
        "GMACs @crop | params |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, names in r["groups"].items():
        for n in names:
            x = r["variants"][n]
            p, pn = x["pairs"], x["pairs_n"]
            sound = (p["ball"] * pn["ball"] + p["spinner"] * pn["spinner"]) / (
                pn["ball"] + pn["spinner"]
            )
            paper = "–" if x["paper_top1"] is None else f"{x['paper_top1']:.1f}"
            lines.append(
                f"| {group} | {x['label']} | {_acc(x['top1'])} | {_pct(sound)} | {paper} | "
                f"{x['gmacs_per_clip']:.4f} | {x['params_inference'] / 1e3:.0f} k |"
            )
    lines += [
        "",
        "| paper's ordering | paper (points) | AVSynth (points) | same direction | "
        "intervals separate |",
        "|---|---|---|---|---|",
    ]
    for o in r["orderings"]:
        lines.append(
            f"| {o['claim']} | {o['paper_points']:+.1f} | {o['avsynth_points']:+.1f} | "
            f"{'yes' if o['same_sign'] else 'no'} | {'yes' if o['intervals_separate'] else 'no'} |"
        )
    return "\n".join(lines)


def ablation_configs(r: dict[str, Any]) -> str:
    """Cost of every fusion-variant config (``avserve model info``), from ablation.json."""
    lines = [
        "| config | audio fusion | after | crop | GMACs | params (inference) | params (total) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in r["configs"].items():
        lines.append(
            f"| `{name}` | {c['av_fusion']} | {', '.join(c['audio_fusion_at']) or 'none'} | "
            f"{c['crop']} | {c['gmacs']:.4f} | {c['params_inference'] / 1e6:.3f} M | "
            f"{c['params_total'] / 1e6:.3f} M |"
        )
    return "\n".join(lines)


def ablation_seed(r: dict[str, Any]) -> str:
    """A replicate of some ablation rows with another seed (same recipe otherwise)."""
    lines = [
        f"seed {r['recipe']['seed']}, otherwise the same recipe and test clips:\n",
        "| variant | top-1 % [95% CI] |",
        "|---|---|",
    ]
    for x in r["variants"].values():
        lines.append(f"| {x['label']} | {_acc(x['top1'])} |")
    return "\n".join(lines)


def candidate_gate(_: dict[str, Any]) -> str:
    """The release gate (offline/evaluation/gate_tables.py) over docs/results, the zoo shipped."""
    return gate_table(RESULTS, ROOT / "models" / "zoo" / "avsynth" / "config.json")


def dense_coverage(r: dict[str, Any]) -> str:
    """Best dense clip's event fill: share of generator specs, and each package's dense-30
    outcomes per bucket on long_test (scripts/dense_coverage.py)."""
    pk = r["packages"]
    spec = r["specs"]
    lines = [
        f"| best dense clip's event fill | share of {spec['count']} long test specs | "
        + " | ".join(f"{name}: right / videos" for name in pk)
        + " |",
        "|---|---|" + "---|" * len(pk),
    ]
    for b in r["buckets"]:
        cells = [f"{p['by_bucket'][b]['correct']} / {p['by_bucket'][b]['n']}" for p in pk.values()]
        lines.append(f"| {b} | {100 * r['spec_shares'][b]:.1f}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def make_model_time(r: dict[str, Any]) -> str:
    """Where one ``make model`` run spent its time (scripts/make_model_time.py)."""
    m = r["machine"]
    lines = [
        f"One run on {r['started_utc'][:10]}, {m['cpu']} ({r['cpus_usable']} cores), torch "
        f"{m['torch']}, `{r['recipe']}`: **{r['total_minutes']} minutes** (goal ≤ "
        f"{r['goal_minutes']}: {'met' if r['meets_goal'] else 'not met'}).\n",
        "| stage | minutes |",
        "|---|---|",
    ]
    lines += [f"| {x['stage']} | {x['minutes']} |" for x in r["stages"]]
    return "\n".join(lines)


RENDERERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "ablation": ("ablation.json", ablation),
    "ablation_seed1": ("ablation_seed1.json", ablation_seed),
    "ablation_configs": ("ablation.json", ablation_configs),
    "finetune": ("finetune_four.json", finetune),
    "own_videos": ("own_videos_parity.json", own_videos),
    "honesty": ("eval_honesty.json", honesty),
    "long": ("eval_long.json", long),
    "long_windows": ("eval_long.json", long_windows),
    "ood": ("eval_ood.json", ood),
    "candidate_gate": ("eval_long.json", candidate_gate),
    "dense_coverage": ("dense_coverage.json", dense_coverage),
    "make_model_time": ("make_model_time.json", make_model_time),
}
# docs/benchmarks.md: tables from the committed bench-results/*.json (benchmarks/tables.py).
# Their paths are absolute, so ``RESULTS / file`` resolves to them unchanged.
RENDERERS |= {name: (str(ROOT / file), fn) for name, (file, fn) in BENCH_TABLES.items()}


def render(text: str) -> str:
    for name, (file, fn) in RENDERERS.items():
        path = RESULTS / file
        pattern = re.compile(
            rf"(<!-- results:{name}:start -->\n)(.*?)(<!-- results:{name}:end -->)", re.S
        )
        if not path.is_file() or not pattern.search(text):
            continue
        table = fn(json.loads(path.read_text()))
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(3), text)
    return text


def main(argv: list[str]) -> int:
    stale = []
    for doc in DOCS:
        old = doc.read_text()
        new = render(old)
        if new != old:
            if "--check" in argv:
                stale.append(doc)
            else:
                doc.write_text(new)
    for doc in stale:
        print(f"{doc}: tables differ from docs/results; run scripts/render_results.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
