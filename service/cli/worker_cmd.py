"""``avserve worker``: process batch-job items from Redis Streams until SIGTERM.

``avserve worker --check`` is the liveness probe: it exits 1 unless a worker on this machine
beat into the heartbeat file recently (``service.queue.liveness``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""

    @app.command("worker")
    def worker(
        redis_url: str | None = typer.Option(
            None, help="Redis URL (default: REDIS_URL / AVSERVE_REDIS_URL)."
        ),
        prefix: str | None = typer.Option(None, help="Key prefix of the queue."),
        concurrency: int | None = typer.Option(None, min=1, help="Items processed at once."),
        processor: str | None = typer.Option(
            None,
            help="Processor factory 'package.module:callable' (default: the classify pipeline "
            "built from the service settings).",
        ),
        consumer: str | None = typer.Option(
            None, envvar="POD_NAME", help="Consumer name (default: host-pid-random)."
        ),
        metrics_port: int | None = typer.Option(
            None, help="Serve Prometheus /metrics on this port (default: off)."
        ),
        grace_s: float | None = typer.Option(
            None, min=0, help="On SIGTERM, how long in-flight items may finish (s)."
        ),
        visibility_timeout_s: float | None = typer.Option(
            None, help="Idle time before another worker reclaims an item (s)."
        ),
        heartbeat_interval_s: float | None = typer.Option(
            None, help="Heartbeat / in-flight claim refresh period (s)."
        ),
        reaper_interval_s: float | None = typer.Option(None, help="Reclaim scan period (s)."),
        max_deliveries: int | None = typer.Option(
            None, min=1, help="Deliveries before an item is dead-lettered."
        ),
        item_timeout_s: float | None = typer.Option(None, help="Processor time limit per item."),
        retry_backoff_s: float | None = typer.Option(None, help="First retry delay (s)."),
        read_block_s: float | None = typer.Option(None, help="XREADGROUP BLOCK time (s)."),
        callback_allow_network: list[str] = typer.Option(
            [], help="CIDR a callback may reach although private (repeatable; tests only)."
        ),
        log_level: str = typer.Option("info", help="debug, info, warning, error."),
        health_file: Path | None = typer.Option(
            None,
            help="Heartbeat file the event loop rewrites, for --check "
            "(default: avserve-worker.heartbeat in the temp directory).",
        ),
        check: bool = typer.Option(
            False,
            "--check",
            help="Liveness probe: exit 0 when the worker's heartbeat file is fresh, else 1.",
        ),
    ) -> None:
        """Run a queue worker: read job items, classify them, report results (until SIGTERM)."""
        from service.queue import liveness

        health_file = health_file or liveness.DEFAULT_HEALTH_FILE
        if check:
            problem = liveness.check(health_file)
            typer.echo(problem or "alive", err=problem is not None)
            raise typer.Exit(1 if problem else 0)
        from service import tracing

        # Each line names the request that submitted the item it is about ("-": none).
        logging.basicConfig(
            level=log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        )
        for handler in logging.getLogger().handlers:
            handler.addFilter(tracing.RequestIdFilter())
        from service.redact import install_redaction

        install_redaction()  # item URLs (presigned signatures) never reach the log in full
        from service.queue.runner import load_factory, run_worker
        from service.settings import Settings

        overrides: dict[str, Any] = {
            "redis_url": redis_url,
            "prefix": prefix,
            "concurrency": concurrency,
            "consumer_name": consumer,
            "metrics_port": metrics_port,
            "shutdown_grace_s": grace_s,
            "visibility_timeout_s": visibility_timeout_s,
            "heartbeat_interval_s": heartbeat_interval_s,
            "reaper_interval_s": reaper_interval_s,
            "max_deliveries": max_deliveries,
            "item_timeout_s": item_timeout_s,
            "retry_backoff_s": retry_backoff_s,
            "read_block_s": read_block_s,
            "callback_allow_networks": tuple(callback_allow_network) or None,
        }
        try:
            settings = Settings()
            config = dataclasses.replace(
                settings.queue_config(), **{k: v for k, v in overrides.items() if v is not None}
            )
            # The default, the classify pipeline, comes from the composition root (torch and
            # all); a processor named on the command line skips importing it.
            factory = load_factory(processor or "service.wiring:job_processor")
        except (ValueError, ImportError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if config.redis_url is None:
            typer.echo("error: `avserve worker` needs REDIS_URL or --redis-url", err=True)
            raise typer.Exit(2)
        from service.errors import AvserveError

        tracing.configure(settings.otlp_endpoint, service_name="avserve-worker")
        try:
            asyncio.run(run_worker(config, factory, health_file=health_file))
        except (AvserveError, RuntimeError) as exc:  # e.g. no model package, no pipeline
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
