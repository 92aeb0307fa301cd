"""``avserve worker``: process batch-job items from Redis Streams until SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

import typer


def _base_config() -> Any:
    """QueueConfig from the service settings (env ``AVSERVE_*``/``REDIS_URL``)."""
    from service.queue.config import QueueConfig

    try:
        from service.settings import Settings
    except ImportError:  # settings not importable: plain defaults + REDIS_URL
        url = os.environ.get("AVSERVE_REDIS_URL") or os.environ.get("REDIS_URL")
        return QueueConfig(redis_url=url)
    return Settings().queue_config()


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
    ) -> None:
        """Run a queue worker: read job items, classify them, report results (until SIGTERM)."""
        from service.queue.runner import load_factory, pipeline_processor, run_worker

        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
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
            config = dataclasses.replace(
                _base_config(), **{k: v for k, v in overrides.items() if v is not None}
            )
            factory = load_factory(processor) if processor else pipeline_processor
        except (ValueError, ImportError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if config.redis_url is None:
            typer.echo("error: `avserve worker` needs REDIS_URL or --redis-url", err=True)
            raise typer.Exit(2)
        from service.errors import AvserveError

        try:
            asyncio.run(run_worker(config, factory))
        except (AvserveError, RuntimeError) as exc:  # e.g. no model package, no pipeline
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
