"""``avserve eval short|long``: accuracy, GMACs and wall time on generated AVSynth sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from offline.cli import ablation_cmd
from service.errors import AvserveError

eval_app = typer.Typer(help="Evaluate models and policies on AVSynth.", no_args_is_help=True)


def _parse_models(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"--model {item!r} is not name=package_dir")
        out[name] = Path(path)
    return out


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError as e:
        raise typer.BadParameter(f"--ks {text!r}: comma-separated integers") from e
    if not ks or not all(1 <= k <= 16 for k in ks):
        raise typer.BadParameter("--ks needs values in 1..16")
    return ks


def _write(out: Path, name: str, report: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _run(console: Console, fn: Any) -> None:
    try:
        fn()
    except (AvserveError, ValueError, KeyError, FileNotFoundError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _update_claims(package_dir: Path, updates: dict[str, Any]) -> None:
    from models.package import read_config
    from models.package_edit import update_metadata

    claims = dict(read_config(package_dir).metadata.get("claims", {}))
    update_metadata(package_dir, {"claims": {**claims, **updates}})


def _record_claim(package_dir: Path, overall: dict[str, Any], data: Path) -> None:
    """What the shipped-model test checks on fresh clips (minus a binomial margin)."""
    from models.package import read_config
    from models.package_edit import update_metadata

    claims = dict(read_config(package_dir).metadata.get("claims", {}))
    claims.update(
        short_test_top1=overall["top1"], short_test_clips=overall["n"], short_test_data=data.name
    )
    update_metadata(package_dir, {"claims": claims})


@eval_app.command("short")
def short(
    data: Path = typer.Option(
        ..., help="AVSynth short-clip set, class folders or a CSV/JSONL list (labelled)."
    ),
    model: list[str] = typer.Option(..., help="name=package_dir (repeat for several models)."),
    videos_dir: Path | None = typer.Option(
        None, help="Root of a list's relative paths (default: the list's folder)."
    ),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where eval_short.json/png go."),
    limit: int | None = typer.Option(None, min=1, help="Evaluate the first N clips only."),
    batch_size: int = typer.Option(16, min=1),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Decode threads."),
    claim: str | None = typer.Option(
        None, help="Record this model's measured top-1 in its package metadata (`claims`)."
    ),
    progress: bool = typer.Option(True),
) -> None:
    """Top-1 (95% CI), per-class and per-pair accuracy, GMACs and ms per clip of each model."""
    from rich.progress import Progress

    from offline.evaluation.charts import plot_short
    from offline.evaluation.short import ShortEvalConfig, evaluate_short
    from offline.evaluation.tables import short_tables

    console = Console(stderr=True)
    models = _parse_models(model)
    if claim is not None and claim not in models:
        raise typer.BadParameter(f"--claim {claim!r} names no --model")
    _threads(threads)

    def go() -> None:
        cfg = ShortEvalConfig(
            limit=limit, batch_size=batch_size, workers=workers, videos_dir=videos_dir
        )
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("decoding clips", total=None)
            report = evaluate_short(data, models, cfg, on_clip=lambda: bar.advance(task))
        for table in short_tables(report):
            Console().print(table)
        path = _write(out, "eval_short", report)
        png = plot_short(report, out / "eval_short.png")
        console.print(f"wrote {path} and {png}")
        if claim is not None:
            _record_claim(models[claim], report["models"][claim]["overall"], data)
            console.print(f"claim recorded in {models[claim]}")

    _run(console, go)


@eval_app.command("long")
def long(
    data: Path = typer.Option(..., help="Generated long-video set (manifest.jsonl)."),
    package: Path = typer.Option(..., help="Model package (with a glance for the glance policy)."),
    ks: str = typer.Option("1,2,4", help="Window counts K for the window policies."),
    policies: str = typer.Option("glance,heuristic,uniform,dense", help="Policies to run."),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where eval_long.json/png go."),
    limit: int | None = typer.Option(None, min=1, help="Evaluate the first N videos only."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Videos in flight at once."),
    claim: bool = typer.Option(False, help="Record glance and dense top-1 in the claims."),
    rho: float | None = typer.Option(
        None, min=0.1, max=1.0, help="Glance patch side / short side (default: the package's)."
    ),
    progress: bool = typer.Option(True),
) -> None:
    """Accuracy, GMACs (% of dense), ms and event hit rate per policy and K, via the Pipeline."""
    from rich.progress import Progress

    from offline.evaluation.charts import plot_long
    from offline.evaluation.long import LongEvalConfig, evaluate_long
    from offline.evaluation.tables import long_table

    console = Console(stderr=True)
    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    unknown = set(names) - {"glance", "heuristic", "uniform", "dense"}
    if unknown or not names:
        raise typer.BadParameter(f"unknown policies {sorted(unknown)}")
    cfg = LongEvalConfig(ks=_parse_ks(ks), policies=names, limit=limit, workers=workers, rho=rho)
    _threads(threads)

    def go() -> None:
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("videos", total=limit)
            report = evaluate_long(data, package, cfg, on_video=lambda: bar.advance(task))
        Console().print(long_table(report))
        path = _write(out, "eval_long", report)
        png = plot_long(report, out / "eval_long.png")
        console.print(f"wrote {path} and {png}")
        if claim:
            found = {
                f"long_{r['policy']}_k{r['k'] or 30}_top1": r["top1"] for r in report["results"]
            }
            _update_claims(package, {**found, "long_videos": report["videos"]})

    _run(console, go)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(eval_app, name="eval")


@eval_app.command("honesty")
def honesty(
    data: Path = typer.Option(
        ..., help="Held-out clip set with background clips (manifest.jsonl)."
    ),
    package: Path = typer.Option(..., help="Calibrated model package."),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where eval_honesty.json goes."),
    limit: int | None = typer.Option(None, min=1, help="Evaluate the first N clips only."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Decode threads."),
    claim: bool = typer.Option(False, help="Record the measured rates in the package's claims."),
    progress: bool = typer.Option(True),
) -> None:
    """Top-1, false and background abstention, ECE, and answers without audio."""
    from rich.progress import Progress

    from offline.calibration import CalibrationConfig
    from offline.evaluation.honesty import evaluate_honesty
    from offline.evaluation.tables import honesty_table

    console = Console(stderr=True)
    _threads(threads)

    def go() -> None:
        cfg = CalibrationConfig(workers=workers, limit=limit)
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("decoding clips", total=None)
            report = evaluate_honesty(data, package, cfg, on_clip=lambda: bar.advance(task))
        Console().print(honesty_table(report))
        console.print(f"wrote {_write(out, 'eval_honesty', report)}")
        if claim:
            _update_claims(
                package,
                {
                    "false_abstention": report["false_abstention"]["top1"],
                    "background_abstention": report["background_abstention"]["top1"],
                    "ece": report["ece"],
                    "silent_max_sound_class_score": report["silent"]["max_sound_class_score"],
                    "honesty_clips": report["clips"],
                    "honesty_data": str(data),
                },
            )

    _run(console, go)


@eval_app.command("ood")
def ood(
    data: Path = typer.Option(..., help="Folder of videos that show none of the model's classes."),
    package: Path = typer.Option(..., help="Model package."),
    policy: str | None = typer.Option(None, help="Window policy (default: the package's)."),
    k: int | None = typer.Option(None, min=1, max=16, help="Clip windows per video."),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where eval_ood.json goes."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    progress: bool = typer.Option(True),
) -> None:
    """How often the model abstains on out-of-domain videos (and why), via the Pipeline."""
    from rich.progress import Progress

    from offline.evaluation.ood import evaluate_ood
    from offline.evaluation.tables import ood_table

    console = Console(stderr=True)
    if policy not in (None, "glance", "heuristic", "uniform", "dense"):
        raise typer.BadParameter(f"unknown policy {policy!r}")
    chosen: Any = policy  # checked above against the policy names
    _threads(threads)

    def go() -> None:
        with Progress(console=console, disable=not progress) as bar:
            task = bar.add_task("videos", total=None)
            report = evaluate_ood(data, package, chosen, k, on_file=lambda: bar.advance(task))
        Console().print(ood_table(report))
        console.print(f"wrote {_write(out, 'eval_ood', report)}")

    _run(console, go)


eval_app.command("ablation")(ablation_cmd.ablation)
