"""``avserve train glance``: distil a heavy package's glance network (see docs/glance.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from offline.cli.overrides import parse_overrides
from service.errors import AvserveError


def glance(
    heavy: Path = typer.Option(..., help="Heavy model package the glance serves (the teacher)."),
    data: Path = typer.Option(
        ..., help="Long videos: an AVSynth set, class folders, a list or a plain folder."
    ),
    videos_dir: Path | None = typer.Option(
        None, help="Root of a list's relative paths (default: the list's folder)."
    ),
    out: Path = typer.Option(..., "--out", help="Run directory (cache, log, package)."),
    short_data: Path | None = typer.Option(None, help="Extra short clips (class evidence)."),
    short_limit: int = typer.Option(300, min=1, help="Short clips used at most."),
    val_data: Path | None = typer.Option(None, help="Long videos to report metrics on."),
    config: str = typer.Option("tiny", help="Glance size: tiny | default."),
    num_snippets: int = typer.Option(
        24, min=2, help="Snippets T per video (24: one inside every 2 s event of a 60 s video)."
    ),
    rho: float = typer.Option(0.8, min=0.05, max=1.0, help="Patch side / frame short side."),
    override: list[str] = typer.Option([], help="GlanceConfig override key=value (repeat)."),
    epochs: int = typer.Option(40, min=1),
    batch_size: int = typer.Option(16, min=1),
    lr: float = typer.Option(2e-3, min=0.0),
    crops: int = typer.Option(3, min=1, help="Teacher crops per snippet window."),
    limit: int | None = typer.Option(None, min=1, help="Use the first N videos only."),
    steps_per_epoch: int | None = typer.Option(None, min=1, help="Cap steps per epoch."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int | None = typer.Option(
        None, min=1, help="Threads encoding the teacher cache (default: one per torch thread)."
    ),
    seed: int = typer.Option(0, min=0),
    cache_dir: Path | None = typer.Option(None, help="Default: <out>/cache."),
    progress: bool = typer.Option(True),
) -> None:
    """Train the glance network of a heavy package by distillation; writes <out>/package."""
    console = Console(stderr=True)
    try:
        _train_glance(**locals())
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err


def _train_glance(**a: Any) -> None:
    import numpy as np
    import torch
    from rich.progress import Progress

    from models import load_package
    from models.glance import glance_cost
    from offline.glance import distill as gt
    from offline.glance.data import (
        TeacherConfig,
        build_glance_set,
        snippet_spec_of,
        video_records,
    )

    console: Console = a["console"]
    if a["threads"]:
        torch.set_num_threads(a["threads"])
    out: Path = a["out"]
    out.mkdir(parents=True, exist_ok=True)
    heavy = load_package(a["heavy"])
    cfg = gt.GlanceTrainConfig(
        config=a["config"], num_snippets=a["num_snippets"], rho=a["rho"],
        overrides=parse_overrides(a["override"]), epochs=a["epochs"],
        batch_size=a["batch_size"], lr=a["lr"], seed=a["seed"],
        steps_per_epoch=a["steps_per_epoch"],
    )  # fmt: skip
    torch.manual_seed(a["seed"])
    net = gt.build_glance(heavy, cfg)
    cost = glance_cost(net.cfg, k=4)
    console.print(
        f"glance: {cost.params} params, {cost.total_gmacs:.3f} GMACs/video (T={cost.snippets}, K=4)"
    )
    spec, teacher = snippet_spec_of(net.cfg), TeacherConfig(crops=a["crops"])
    cache: Path = a["cache_dir"] or out / "cache"

    def load(d: Path, limit: int | None, what: str) -> Any:
        n = len(video_records(d, videos_dir=a["videos_dir"]))
        with Progress(console=console, disable=not a["progress"]) as bar:
            task = bar.add_task(f"{what}: snippets + teacher", total=min(n, limit or n))
            return build_glance_set(
                d, heavy, spec, cache, teacher, limit=limit,
                on_progress=lambda _: bar.advance(task), videos_dir=a["videos_dir"],
                workers=a["workers"] or torch.get_num_threads(),
            )  # fmt: skip

    t0 = time.perf_counter()
    train = load(a["data"], a["limit"], "train")
    if a["short_data"] is not None:
        train = train.concat(load(a["short_data"], a["short_limit"], "short"))
    val = load(a["val_data"], None, "val") if a["val_data"] is not None else None
    cache_s = time.perf_counter() - t0
    labels_file = a["data"] / "labels.json"
    flip = (
        json.loads(labels_file.read_text()).get("flip_label_map") if labels_file.is_file() else None
    )
    (out / "train_log.jsonl").unlink(missing_ok=True)
    t0 = time.perf_counter()
    with Progress(console=console, disable=not a["progress"]) as bar:
        task = bar.add_task("train glance", total=None)

        def tick(step: int, total: int, losses: dict[str, float]) -> None:
            bar.update(task, completed=step, total=total, description=f"loss {losses['total']:.3f}")

        log = gt.train_glance(
            net, train, cfg, flip_map=None if flip is None else np.asarray(flip),
            val=val, log_path=out / "train_log.jsonl", on_step=tick,
        )  # fmt: skip
    train_s = time.perf_counter() - t0
    info = {
        "trained_on": str(a["data"]), "videos": len(train), "config": gt.config_record(cfg),
        "cache_seconds": round(cache_s, 1), "train_seconds": round(train_s, 1),
        "final": {k: v for k, v in log[-1].items() if k in ("train", "val")},
    }  # fmt: skip
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    path = gt.write_glance_package(out / "package", heavy, net, info)
    console.print(f"cache {cache_s:.0f} s, training {train_s:.0f} s; final {info['final']}")
    console.print(f"package written to {path}")
