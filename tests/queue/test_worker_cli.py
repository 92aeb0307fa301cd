"""`avserve worker` argument handling (the processes themselves: test_worker_processes.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from service.cli import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ("REDIS_URL", "AVSERVE_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def test_worker_without_redis_refuses_to_start(runner: CliRunner) -> None:
    result = runner.invoke(app, ["worker", "--processor", "tests.queue.processors:scripted"])
    assert result.exit_code == 2
    assert "REDIS_URL" in result.output


@pytest.mark.parametrize(
    "spec", ["no-colon", "tests.queue.processors:missing", "tests.queue.nonexistent:f"]
)
def test_worker_rejects_a_bad_processor_path(runner: CliRunner, spec: str) -> None:
    result = runner.invoke(
        app, ["worker", "--redis-url", "redis://127.0.0.1:6379/0", "--processor", spec]
    )
    assert result.exit_code == 2
    assert "error:" in result.output


def test_worker_rejects_inconsistent_timings(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "worker", "--redis-url", "redis://127.0.0.1:6379/0",
            "--processor", "tests.queue.processors:scripted",
            "--visibility-timeout-s", "1", "--heartbeat-interval-s", "5",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "heartbeat_interval_s" in result.output
