"""``avserve eval ablation``: the paper's design ablations trained and scored on AVSynth."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def ablation(
    train_data: Path = typer.Option(..., help="AVSynth short training set (manifest.jsonl)."),
    test_data: Path = typer.Option(..., help="AVSynth short test set (other seeds)."),
    runs: Path = typer.Option(
        Path("runs/ablation"), help="One run directory per variant (resumable)."
    ),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where ablation.json/png go."),
    only: str = typer.Option(
        "", help="Comma-separated variants, trained in this order (default: all)."
    ),
    epochs: int = typer.Option(6, min=1),
    batch_size: int = typer.Option(16, min=1),
    lr: float = typer.Option(0.05),
    warmup_epochs: float = typer.Option(1.0, min=0.0),
    crop_size: int = typer.Option(64, min=16),
    cache_side: int = typer.Option(80, min=16),
    seed: int = typer.Option(0, min=0),
    threads: int = typer.Option(1, min=1, help="torch threads of each training run."),
    steps_per_epoch: int | None = typer.Option(None, min=1, help="Cap steps per epoch."),
    train: bool = typer.Option(True, help="Train variants without a finished run first."),
) -> None:
    """Train each variant with the same recipe (one after another), score all on the test set,
    write ablation.json (top-1 with 95% Wilson intervals) and ablation.png."""
    from offline.cli.eval_cmd import _run, _write
    from offline.evaluation.ablation import Recipe, run_ablation
    from offline.evaluation.charts import plot_ablation

    console = Console(stderr=True)
    recipe = Recipe(
        epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=warmup_epochs, crop_size=crop_size,
        cache_side=cache_side, seed=seed, threads=threads, steps_per_epoch=steps_per_epoch,
    )  # fmt: skip
    names = tuple(n.strip() for n in only.split(",") if n.strip())

    def go() -> None:
        report = run_ablation(
            train_data, test_data, runs, recipe, names, train=train, say=console.print
        )
        table = Table(title="AVSynth ablation: top-1 % [95% Wilson CI]")
        for col in ("group", "variant", "top-1", "paper K400"):
            table.add_column(col)
        for group, rows in report["groups"].items():
            for n in rows:
                r = report["variants"][n]
                a = r["top1"]
                table.add_row(
                    group, r["label"],
                    f"{100 * a['top1']:.1f} [{100 * a['ci95'][0]:.1f}–{100 * a['ci95'][1]:.1f}]",
                    str(r["paper_top1"] or "–"),
                )  # fmt: skip
        Console().print(table)
        path = _write(out, "ablation", report)
        png = plot_ablation(report, out / "ablation.png")
        console.print(f"wrote {path} and {png}")

    _run(console, go)
