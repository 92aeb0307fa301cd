"""``avserve train calibrate``: fit a package's calibration and abstention rules."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from service.errors import AvserveError


def calibrate(
    package: Path = typer.Option(..., help="Package whose first head is calibrated (in place)."),
    data: Path = typer.Option(..., help="Validation set (manifest.jsonl), never the test set."),
    target: float = typer.Option(
        0.02, min=0.0, max=1.0, help="Largest share of class clips the rules may refuse."
    ),
    objective: str = typer.Option(
        "ece", help="What the temperature minimises: ece (default) or nll (Guo et al. 2017)."
    ),
    min_temperature: float = typer.Option(
        1.0, min=0.0, help="Lowest temperature allowed (1: never sharpen; 0: no bound)."
    ),
    limit: int | None = typer.Option(None, min=1, help="Use the first N clips only."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Decode threads."),
    json_out: bool = typer.Option(False, "--json", help="Print the fitted rules as JSON."),
) -> None:
    """Fit temperature scaling and the abstention threshold; store them in config.json."""
    import torch

    from offline.calibration import CalibrationConfig, calibrate_package

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        if objective not in ("ece", "nll"):
            raise ValueError(f"--objective {objective!r}: choose ece or nll")
        cfg = CalibrationConfig(
            target_false_abstention=target,
            objective="ece" if objective == "ece" else "nll",
            min_temperature=min_temperature,
            workers=workers,
            limit=limit,
        )
        report = calibrate_package(package, data, cfg)
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err
    if json_out:
        print(json.dumps(report, indent=2))
        return
    m = report["metrics"]
    console.print(
        f"head {report['head']}: temperature {report['temperature']}, min_confidence "
        f"{report['min_confidence']}, ECE {m['ece_before']} -> {m['ece']}, false abstention "
        f"{m['false_abstention']}, background abstention {m['background_abstention']}"
    )
