"""``avserve data``: generate training / evaluation data (AVSynth), check a user's data set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from offline.cli.data_check import check
from service.errors import AvserveError

data_app = typer.Typer(help="Generate datasets.", no_args_is_help=True)


@data_app.command("avsynth")
def avsynth(
    out: Path = typer.Option(..., "--out", help="Directory for the MP4s and the manifest."),
    split: str = typer.Option("short", help="short (2.4-4 s clips) or long (30-60 s videos)."),
    subset: str = typer.Option("train", help="train, val or test (disjoint seed ranges)."),
    count: int = typer.Option(100, min=1, help="Number of files."),
    seed: int = typer.Option(0, min=0, help="Base seed; same seed, same files."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    overwrite: bool = typer.Option(False, help="Re-encode files that already exist."),
    background: int = typer.Option(
        0, min=0, help="Extra clips that show none of the classes (label 'background')."
    ),
    windows: int = typer.Option(
        0, min=0, help="Extra class clips cut like the glance's long-video windows."
    ),
) -> None:
    """Generate an AVSynth subset: H.264+AAC MP4s, manifest.jsonl/.csv and labels.json."""
    from offline.data.avsynth.generate import GenerateConfig, generate

    cfg = GenerateConfig(
        out=out,
        split=split,  # type: ignore[arg-type]
        subset=subset,  # type: ignore[arg-type]
        count=count,
        seed=seed,
        workers=workers,
        overwrite=overwrite,
        background=background,
        windows=windows,
    )
    console = Console(stderr=True)
    start = time.perf_counter()
    try:
        cfg.validate()
        with Progress(
            TextColumn(f"avsynth {split}/{subset}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("generate", total=count + background + windows)

            def tick(_: dict[str, Any]) -> None:
                progress.advance(task)

            records = generate(cfg, on_progress=tick)
    except AvserveError as err:
        console.print(f"[red]error[/red] {err.code}: {err.message}")
        raise typer.Exit(2) from err
    elapsed = time.perf_counter() - start
    console.print(
        f"wrote {len(records)} files to {out} in {elapsed:.1f} s "
        f"({len(records) / max(elapsed, 1e-9):.2f} files/s, {workers} workers)"
    )


data_app.command("check")(check)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(data_app, name="data")
