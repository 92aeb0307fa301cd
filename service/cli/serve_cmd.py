"""``avserve serve``: start the HTTP gateway (see ``service.api.server`` for the drain logic).

Start-up order: settings (validated) -> model folder checked -> listening socket bound ->
models loaded and warmed up -> "ready". Any configuration problem ends here with one line and
exit status 2 (``service.startup``); the traceback only with ``--log-level debug``.
"""

from __future__ import annotations

import traceback
from contextlib import ExitStack
from pathlib import Path

import typer


def serve(
    host: str | None = typer.Option(
        None, help="Bind address (env AVSERVE_HOST; default 127.0.0.1)."
    ),
    port: int | None = typer.Option(None, help="Port (env AVSERVE_PORT; default 8000)."),
    model_dir: Path | None = typer.Option(
        None,
        help="Model package or folder of packages (env AVSERVE_MODEL_DIR; default: the bundled "
        "models/zoo).",
    ),
    runtime: str | None = typer.Option(
        None, help="eager, torchscript or onnx (env AVSERVE_RUNTIME; default eager)."
    ),
    device: str | None = typer.Option(
        None, help="cpu, cuda, cuda:N or auto (env AVSERVE_DEVICE; default auto)."
    ),
    log_level: str | None = typer.Option(
        None, help="debug, info, warning or error (env AVSERVE_LOG_LEVEL; default info)."
    ),
) -> None:
    """Start the HTTP gateway (settings from AVSERVE_* env vars and .env; flags win)."""
    from service.heap import startup_heap

    # Imports, torch and the model load run without cyclic GC (service.heap); the heap is
    # frozen once the services stand, so later collections never walk torch's objects.
    with ExitStack() as starting:
        starting.enter_context(startup_heap())
        from service.startup import (
            EXIT_CONFIG,
            StartupError,
            bind_listener,
            check_api_keys,
            check_model_dir,
            check_tmp_dir,
            debug_requested,
            load_settings,
        )

        settings = None
        try:
            settings = load_settings(
                host=host,
                port=port,
                model_dir=model_dir,
                runtime=runtime,
                device=device,
                log_level=log_level,
            )
            check_model_dir(settings)
            check_api_keys(settings)
            check_tmp_dir(settings)
            sock = bind_listener(settings.host, settings.port)
        except StartupError as e:
            if debug_requested(settings, log_level):
                traceback.print_exc()
            typer.echo(f"avserve: {e}", err=True)
            raise typer.Exit(EXIT_CONFIG) from None

        from service.malloc_tuning import retain_freed_memory

        retain_freed_memory(settings.malloc_trim_threshold_mb)  # before torch allocates
        from service.api import create_app
        from service.api.logs import configure_logging
        from service.api.server import run_server

        configure_logging(settings.log_level, json_lines=settings.log_json)
        from service import tracing

        tracing.configure(settings.otlp_endpoint, service_name="avserve-gateway")
        outcome = run_server(
            create_app(settings, on_ready=starting.close), settings.host, settings.port, sock=sock
        )
        if outcome.error is not None:
            typer.echo(f"avserve: cannot start: {outcome.error}", err=True)
        raise typer.Exit(outcome.code)


def register(app: typer.Typer) -> None:
    """Attach ``avserve serve`` to the root app."""
    app.command("serve")(serve)
