"""``avserve classify PATH...``: the serving pipeline on local files, without the HTTP layer.

Paths are checked before the model loads. Output (``service.cli.classify_output``) keeps the
input order in every format. Exit status: 0 when every file was classified, 1 when any file
failed (the count goes to stderr), 2 for a usage or configuration problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from service.errors import AvserveError
    from service.schemas import ClassifyOptions, ClassifyResult
    from service.settings import Settings

    Outcome = ClassifyResult | AvserveError


async def _classify_all(
    files: list[Path],
    options: ClassifyOptions,
    settings: Settings,
    concurrency: int,
    on_result: Callable[[int, Outcome], None] | None = None,
    on_started: Callable[[], object] | None = None,
) -> list[tuple[Path, Outcome]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from service.errors import AvserveError
    from service.media import DecodePool
    from service.metrics import Metrics
    from service.startup import check_model_dir

    # No more decode processes than videos in flight (one file: one worker); no job service.
    workers = min(concurrency, len(files), settings.media.decode_workers)
    # No batch-size tuning either: it times several batch sizes (each new shape pays its first
    # call), which one command's few files never win back.
    settings = settings.model_copy(
        update={
            "media": settings.media.model_copy(update={"decode_workers": workers}),
            "batcher": settings.batcher.model_copy(update={"autotune": False}),
        }
    )
    # The decode workers (fresh interpreters importing PyAV) start on the other core while
    # this process imports torch to check the model folder: 0.2-0.3 s off a one-file run.
    decoder = DecodePool(workers, settings.media_policy())
    spawning = asyncio.create_task(decoder.start())
    try:
        await asyncio.to_thread(check_model_dir, settings)
        from service.wiring import start_services

        # No warm-up: a batch of files amortises the first call; one file would pay it twice.
        services = await start_services(
            settings,
            Metrics(),
            jobs=False,
            default_model=options.model,
            warmup=False,
            decoder=decoder,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await spawning
        await decoder.close()
        raise
    if on_started is not None:
        on_started()
    results: list[tuple[Path, Outcome]] = []
    try:
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

            async def one(index: int, path: Path) -> None:
                async with sem:
                    outcome: Outcome
                    try:
                        outcome = await services.classify(path, options)
                    except AvserveError as e:
                        outcome = e
                    results.append((path, outcome))
                    if on_result is not None:
                        on_result(index, outcome)
                    progress.advance(task)

            await asyncio.gather(*(one(i, f) for i, f in enumerate(files)))
    finally:
        await services.close(settings.shutdown_grace_s)
    order = {p: i for i, p in enumerate(files)}
    return sorted(results, key=lambda r: order[r[0]])


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
        output_format: str = typer.Option(
            "table",
            "--format",
            help="table (aligned, full names), tsv (tab-separated with a header) or json "
            "(one object per file); always in input order.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    ) -> None:
        """Classify local videos with the same pipeline the HTTP service runs.

        Exit status: 0 all classified, 1 some files failed, 2 usage or configuration error.
        """
        from service.heap import startup_heap

        # Imports, torch and the model load run without cyclic GC (service.heap); the heap is
        # frozen once the services stand, before the first video.
        with ExitStack() as starting:
            starting.enter_context(startup_heap())
            from service.cli.classify_output import OrderedJsonWriter
            from service.media.files import expand_paths
            from service.schemas import ClassifyOptions
            from service.startup import StartupError, load_settings

            chosen = "json" if as_json else output_format
            if chosen not in ("table", "tsv", "json"):
                raise typer.BadParameter(
                    f"{chosen!r}: use table, tsv or json", param_hint="--format"
                )
            missing = [p for p in paths if not p.exists()]
            for p in missing:
                typer.echo(f"avserve classify: no such file or folder: {p}", err=True)
            if missing:
                raise typer.Exit(2)
            files = expand_paths(paths)
            if not files:
                typer.echo("avserve classify: no video files found", err=True)
                raise typer.Exit(2)
            try:
                options = ClassifyOptions(policy=policy, k=k, top_k=top_k, model=model)
            except ValueError as e:
                raise typer.BadParameter(str(e)) from e
            writer = OrderedJsonWriter(files) if chosen == "json" else None
            try:
                settings = load_settings(model_dir=model_dir, runtime=runtime, device=device)
                from service.malloc_tuning import retain_freed_memory

                retain_freed_memory(settings.malloc_trim_threshold_mb)  # before torch allocates
                results = asyncio.run(
                    _classify_all(
                        files, options, settings, concurrency, writer, on_started=starting.close
                    )
                )
            except StartupError as e:  # the settings, or the model folder (checked in there)
                typer.echo(f"avserve classify: {e}", err=True)
                raise typer.Exit(2) from None
        from service.cli.classify_output import write_table, write_tsv

        if chosen == "table":
            write_table(results)
        elif chosen == "tsv":
            write_tsv(results)
        failed = sum(1 for _, r in results if not hasattr(r, "heads"))
        if failed:
            typer.echo(f"avserve classify: {failed} of {len(results)} files failed", err=True)
        raise typer.Exit(code=1 if failed else 0)
