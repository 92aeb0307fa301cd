"""`avserve worker --check`: the liveness probe reads the heartbeat of the worker's event loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.queue.liveness import heartbeat, write_beat
from service.queue.runner import run_worker
from tests.queue.conftest import fast_config
from tests.queue.processors import scripted


def probe(path: Path) -> int:
    result = CliRunner().invoke(app, ["worker", "--check", "--health-file", str(path)])
    return result.exit_code


def test_the_check_fails_without_a_heartbeat_file(tmp_path: Path) -> None:
    assert probe(tmp_path / "missing") == 1


def test_a_fresh_beat_passes_and_a_stale_one_fails(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    write_beat(path, interval_s=10.0)
    assert probe(path) == 0
    beat = json.loads(path.read_text())
    path.write_text(json.dumps(beat | {"at": beat["at"] - 31.0}))  # three intervals missed
    assert probe(path) == 1


def test_a_garbled_file_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    path.write_text("{not json")
    assert probe(path) == 1


async def test_the_loop_keeps_beating_and_the_file_goes_when_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    task = asyncio.create_task(heartbeat(path, interval_s=0.05))
    await asyncio.sleep(0.01)
    first = json.loads(path.read_text())["at"]
    await asyncio.sleep(0.2)
    assert json.loads(path.read_text())["at"] > first
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not path.exists()


@pytest.mark.redis
async def test_a_running_worker_is_alive_until_it_stops(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    path = tmp_path / "beat"
    stop = asyncio.Event()
    config = fast_config(redis_url=redis_url, prefix=redis_prefix)
    task = asyncio.create_task(run_worker(config, scripted, stop=stop, health_file=path))
    for _ in range(200):
        if path.exists():
            break
        await asyncio.sleep(0.02)
    assert probe(path) == 0
    stop.set()
    await task
    assert probe(path) == 1
