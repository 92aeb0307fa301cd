"""``avserve classify PATH...``: the serving pipeline on local files, without the HTTP layer."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer


async def _classify_all(
    files: list[Path],
    options: Any,
    settings: Any,
    concurrency: int,
    emit_json: bool,
) -> list[tuple[Path, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from service.errors import AvserveError
    from service.media import DecodePool
    from service.pipeline import Pipeline

    registry = await asyncio.to_thread(settings.load_registry, None, options.model)
    model = registry.get(options.model)
    results: list[tuple[Path, Any]] = []
    workers = min(concurrency, settings.media.decode_workers)
    async with DecodePool(workers, settings.media_policy()) as pool:
        await registry.start()
        pipeline = Pipeline(model.package, pool, model.batcher.infer, settings.pipeline_config())
        sem = asyncio.Semaphore(concurrency)
        show_bar = len(files) > 1 and sys.stderr.isatty()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not show_bar,
            transient=True,
        ) as progress:
            task = progress.add_task("classifying", total=len(files))

            async def one(path: Path) -> None:
                async with sem:
                    outcome: Any
                    try:
                        outcome = await pipeline.classify(path, options)
                    except AvserveError as e:
                        outcome = e
                    results.append((path, outcome))
                    if emit_json:
                        print(json.dumps(_json_line(path, outcome)), flush=True)
                    progress.advance(task)

            await asyncio.gather(*(one(f) for f in files))
        await registry.close()
    order = {p: i for i, p in enumerate(files)}
    return sorted(results, key=lambda r: order[r[0]])


def _json_line(path: Path, outcome: Any) -> dict[str, Any]:
    from service.errors import AvserveError

    if isinstance(outcome, AvserveError):
        return {"file": str(path), "error": outcome.to_dict()}
    return {"file": str(path), **outcome.model_dump(mode="json")}


def _summary(results: list[tuple[Path, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from service.errors import AvserveError

    table = Table(title="avserve classify")
    for col in ("file", "top label", "score", "policy", "k", "audio", "GMACs (% dense)", "ms"):
        table.add_column(col)
    for path, r in results:
        if isinstance(r, AvserveError):
            table.add_row(path.name, f"[red]{r.code}[/red]", "", "", "", "", "", r.message[:40])
            continue
        head = next(iter(r.heads.values()))
        best = head[0]
        table.add_row(
            path.name,
            best.label,
            f"{best.score:.3f}",
            r.policy,
            str(r.k),
            r.audio,
            f"{r.compute.gmacs:.2f} ({100 * r.compute.fraction_of_dense:.1f}%)",
            f"{r.timings_ms['total']:.0f}",
        )
    Console(stderr=True).print(table)


def register(app: typer.Typer) -> None:
    @app.command("classify")
    def classify(
        paths: list[Path] = typer.Argument(
            ..., help="Video files or folders (searched recursively)."
        ),
        policy: str | None = typer.Option(
            None, help="glance | heuristic | uniform | dense (default: the model's)."
        ),
        k: int | None = typer.Option(None, "--k", min=1, max=16, help="Clip windows per video."),
        top_k: int = typer.Option(5, "--top-k", min=1, help="Labels shown per head."),
        model_dir: Path | None = typer.Option(None, help="Model package or folder of packages."),
        model: str | None = typer.Option(None, help="Package name when the folder holds several."),
        runtime: str | None = typer.Option(None, help="eager | torchscript | onnx"),
        device: str | None = typer.Option(None, help="cpu | cuda | auto"),
        concurrency: int = typer.Option(2, min=1, help="Videos in flight at once."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout."),
    ) -> None:
        """Classify local videos with the same pipeline the HTTP service runs."""
        from service.media.files import expand_paths
        from service.schemas import ClassifyOptions
        from service.settings import Settings

        files = expand_paths(paths)
        if not files:
            raise typer.BadParameter("no video files found")
        overrides: dict[str, Any] = {}
        if model_dir is not None:
            overrides["model_dir"] = model_dir
        if runtime is not None:
            overrides["runtime"] = runtime
        if device is not None:
            overrides["device"] = device
        settings = Settings(**overrides)
        try:
            options = ClassifyOptions(policy=policy, k=k, top_k=top_k, model=model)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        results = asyncio.run(_classify_all(files, options, settings, concurrency, as_json))
        if not as_json:
            _summary(results)
        failed = sum(1 for _, r in results if not hasattr(r, "heads"))
        raise typer.Exit(code=1 if failed == len(results) else 0)
