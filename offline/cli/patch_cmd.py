"""``avserve train patch``: choose the served glance patch size on validation videos.

The glance policy places a square patch of side rho x short side; its network trained with one
rho (``GlanceConfig.rho``), but which side serves best depends on the heavy model too (one that
also learned from short-side views reads a larger patch as well, and a larger patch misses the
event less often). This runs the glance policy through the real pipeline at each candidate
rho on a generated long-video *validation* set, stores the best in the package
(``glance.patch_rho``) and the measurements in its metadata (``glance_patch``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from service.errors import AvserveError


def patch(
    package: Path = typer.Option(..., help="Package with a glance (edited in place)."),
    data: Path = typer.Option(..., help="Generated long-video validation set, never the test set."),
    rhos: str = typer.Option("0.6,0.8,1.0", help="Candidate patch sides / short side."),
    k: int = typer.Option(2, min=1, help="Windows per video while comparing."),
    limit: int | None = typer.Option(None, min=1, help="Use the first N videos only."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    write: bool = typer.Option(True, help="Store the choice in the package."),
) -> None:
    """Measure the glance at each patch size; keep the best (known-and-correct, then top-1)."""
    import torch

    from models import load_package
    from models.package_edit import set_glance_patch_rho, update_metadata
    from offline.evaluation.long import LongEvalConfig, evaluate_long

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        candidates = [float(x) for x in rhos.split(",") if x.strip()]
        if not candidates or not all(0 < r <= 1 for r in candidates):
            raise ValueError(f"--rhos {rhos!r}: give sides in (0, 1], comma-separated")
        trained = load_package(package).glance_model()
        if trained is None:
            raise ValueError(f"{package} has no glance")
        rows = []
        for rho in candidates:
            cfg = LongEvalConfig(ks=(k,), policies=("glance",), limit=limit, rho=rho)
            r = evaluate_long(data, package, cfg)["results"][0]
            keep = ("top1", "known_and_correct", "abstain_rate", "box_hit_rate", "n")
            rows.append({"rho": rho, **{key: r[key] for key in keep}})
        # ties go to the rho the glance network trained with, then to the smaller patch
        best = max(
            rows,
            key=lambda x: (
                x["known_and_correct"],
                x["top1"],
                x["rho"] == trained.cfg.rho,
                -x["rho"],
            ),
        )
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err
    table = Table("rho", "top-1 %", "known & correct %", "abstained %", "box hit %", "videos")
    for x in rows:
        mark = " *" if x is best else ""
        table.add_row(
            f"{x['rho']:g}{mark}", f"{100 * x['top1']:.1f}", f"{100 * x['known_and_correct']:.1f}",
            f"{100 * x['abstain_rate']:.1f}", f"{100 * x['box_hit_rate']:.1f}", str(x["n"]),
        )  # fmt: skip
    Console().print(table)
    if write:
        set_glance_patch_rho(package, best["rho"])
        update_metadata(package, {"glance_patch": {"data": str(data), "k": k, "rows": rows}})
        console.print(f"patch rho {best['rho']:g} stored in {package}")
