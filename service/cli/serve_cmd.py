"""``avserve serve``: start the HTTP gateway (see ``service.api.server`` for the drain logic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def serve(
    host: str | None = typer.Option(None, help="Bind address [env AVSERVE_HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Port [env AVSERVE_PORT, 8000]."),
    model_dir: Path | None = typer.Option(
        None, help="Model package or directory of packages [env AVSERVE_MODEL_DIR, models/zoo]."
    ),
    runtime: str | None = typer.Option(
        None, help="eager | torchscript | onnx [env AVSERVE_RUNTIME, eager]."
    ),
    device: str | None = typer.Option(
        None, help="cpu | cuda | cuda:N | auto [env AVSERVE_DEVICE]."
    ),
    log_level: str | None = typer.Option(None, help="debug | info | warning | error."),
) -> None:
    """Start the HTTP gateway (settings from AVSERVE_* env vars and .env; flags win)."""
    from pydantic import ValidationError

    from service.api import create_app
    from service.api.logs import configure_logging
    from service.api.server import run_server
    from service.settings import Settings

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "model_dir": model_dir,
        "runtime": runtime,
        "device": device,
        "log_level": log_level,
    }
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        typer.echo(f"invalid settings:\n{e}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, json_lines=settings.log_json)
    code = run_server(create_app(settings), settings.host, settings.port)
    if code:
        typer.echo("avserve failed to start (see the log above)", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Attach ``avserve serve`` to the root app."""
    app.command("serve")(serve)
