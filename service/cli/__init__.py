"""The ``avserve`` command line. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import typer

from offline.cli import data_cmd, eval_cmd, train_cmd
from service.cli import classify_cmd, media_cmd, model_cmd, serve_cmd, worker_cmd

app = typer.Typer(
    name="avserve",
    help="Audio-visual video classification: glance + AVSlowFast, served over HTTP and queues.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

for _module in (
    model_cmd,
    media_cmd,
    classify_cmd,
    serve_cmd,
    worker_cmd,
    data_cmd,
    train_cmd,
    eval_cmd,
):
    _module.register(app)


def main() -> None:
    app()
