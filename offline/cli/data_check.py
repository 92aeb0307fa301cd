"""``avserve data check SOURCE``: is this data set trainable? Before any training starts.

Opens the source like ``avserve train`` does, probes every file with the media layer and prints
class counts, durations, imbalance and every problem (unreadable files with the media error
code, bad rows, missing files, unknown labels, empty class folders). Exit status 0 when there
is no error (warnings allowed), 1 when there is one, 2 when the source cannot be read at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from service.errors import AvserveError

_SHOWN = 50  # problems printed in the table (--json lists all)


def _tables(report: dict[str, Any]) -> list[Table]:
    summary = Table(title=f"{report['source']} ({report['kind']})", show_header=False)
    d = report["duration_s"] or {}
    rows = [
        ("samples found", str(report["samples"])),
        ("readable", str(report["usable"])),
        ("classes", str(len(report["classes"]))
         + (" (multi-label)" if report["multi_label"] else "")),
        ("unlabeled", str(report["unlabeled"])),
        ("with audio", str(report["with_audio"])),
        ("duration s (min / median / max)",
         f"{d['min']:.2f} / {d['median']:.2f} / {d['max']:.2f}" if d else "-"),
        ("total hours", f"{d['total'] / 3600:.2f}" if d else "-"),
        ("imbalance (largest / smallest class)",
         f"{report['imbalance']:.2f}" if report["imbalance"] else "-"),
        ("errors / warnings", f"{report['errors']} / {report['warnings']}"),
    ]  # fmt: skip
    for k, v in rows:
        summary.add_row(k, v)
    out = [summary]
    if report["classes"]:
        classes = Table(title="Classes")
        for col in ("class", "clips", "seconds"):
            classes.add_column(col, justify="left" if col == "class" else "right")
        for name, c in report["classes"].items():
            style = "red" if c["count"] == 0 else None
            classes.add_row(name, str(c["count"]), f"{c['seconds']:.1f}", style=style)
        out.append(classes)
    if report["problems"]:
        problems = Table(title=f"Problems (first {_SHOWN} of {len(report['problems'])})")
        for col in ("severity", "code", "where", "message"):
            problems.add_column(col)
        for p in report["problems"][:_SHOWN]:
            style = "red" if p["severity"] == "error" else "yellow"
            problems.add_row(p["severity"], p["code"], p["where"], p["message"], style=style)
        out.append(problems)
    return out


def check(
    source: Path = typer.Argument(..., help="Class folders, a CSV/JSONL list or an AVSynth set."),
    data_format: str = typer.Option(
        "auto", "--format", help="auto | avsynth | folder | csv | jsonl."
    ),
    videos_dir: Path | None = typer.Option(
        None, help="Root of a list's relative paths / Kinetics downloads (default: its folder)."
    ),
    workers: int = typer.Option(1, min=1, help="Files probed at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Report unreadable files, class counts, durations and imbalance of a data set."""
    from rich.progress import Progress

    from offline.data.sources import SourceSpec, open_source
    from offline.data.sources.check import check_report, probe_samples

    err_console = Console(stderr=True)
    try:
        src = open_source(SourceSpec(source, data_format, videos_dir))
        with Progress(console=err_console, disable=as_json) as bar:
            task = bar.add_task("probing", total=len(src.samples))
            probed = probe_samples(src, workers=workers, on_progress=lambda: bar.advance(task))
    except AvserveError as err:
        err_console.print(f"[red]error[/red] {err.code}: {err.message}")
        raise typer.Exit(2) from err
    report = check_report(src, probed)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        console = Console()
        for table in _tables(report):
            console.print(table)
    if report["errors"] or not report["usable"]:
        raise typer.Exit(1)
