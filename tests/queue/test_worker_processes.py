"""`avserve worker` processes on real Redis: fan-out, SIGKILL, SIGTERM, Redis restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from service.queue import QueueConfig
from service.queue.redis_backend import RedisBackend
from service.queue.schemas import JobCreate
from service.queue.service import JobService
from tests.conftest import REPO_ROOT
from tests.queue.conftest import fast_config, item_urls, wait_for
from tests.queue.processors import url_digest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.redis]

WORKER_ARGS = [
    "--visibility-timeout-s", "1.5",
    "--heartbeat-interval-s", "0.3",
    "--reaper-interval-s", "0.2",
    "--read-block-s", "0.2",
    "--retry-backoff-s", "0.05",
]  # fmt: skip


class Fleet:
    """Worker processes started by one test; whatever is still running is killed at the end."""

    def __init__(self, redis_url: str, prefix: str, logs: Path) -> None:
        self.redis_url, self.prefix, self.logs = redis_url, prefix, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, *extra: str, concurrency: int = 2, grace_s: float = 3.0
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        cmd = [
            sys.executable, "-c", "from service.cli import main; main()", "worker",
            "--redis-url", self.redis_url, "--prefix", self.prefix,
            "--processor", "tests.queue.processors:scripted",
            "--concurrency", str(concurrency), "--grace-s", str(grace_s),
            *WORKER_ARGS, *extra,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
        log.close()
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.log"))


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Any]:
    fleets: list[Fleet] = []

    def make(redis_url: str, prefix: str) -> Fleet:
        fleet = Fleet(redis_url, prefix, tmp_path)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.kill_all()


async def open_jobs(redis_url: str, prefix: str) -> JobService:
    config: QueueConfig = fast_config(redis_url=redis_url, prefix=prefix, embedded_worker=False)
    service = JobService(config, RedisBackend(config), None)
    await service.start()
    return service


async def submit(service: JobService, urls: list[str]) -> str:
    job, created = await service.submit(
        JobCreate.model_validate({"items": [{"url": u} for u in urls]}), None
    )
    assert created
    return job.id


async def wait_workers(service: JobService, n: int, fleet: Fleet, timeout_s: float = 60) -> None:
    async def alive() -> bool:
        return (await service.backend.stats()).workers_alive >= n

    try:
        await wait_for(alive, timeout_s, f"{n} workers to heartbeat")
    except AssertionError:
        raise AssertionError(fleet.log_text()) from None


async def wait_done(service: JobService, job_id: str, fleet: Fleet, timeout_s: float) -> Any:
    async def finished() -> bool:
        job = await service.backend.get_job(job_id)
        return job is not None and job.finished_at is not None

    try:
        await wait_for(finished, timeout_s, f"job {job_id}")
    except AssertionError:
        raise AssertionError(fleet.log_text()) from None
    return await service.backend.get_job(job_id)


async def test_200_items_across_three_worker_processes_are_each_reported_once(
    redis_url: str, redis_prefix: str, fleet_factory: Any
) -> None:
    fleet = fleet_factory(redis_url, redis_prefix)
    jobs = await open_jobs(redis_url, redis_prefix)
    try:
        for _ in range(3):
            fleet.spawn(concurrency=4)
        await wait_workers(jobs, 3, fleet)
        urls = item_urls(200, "fan", sleep=0.02)
        job_id = await submit(jobs, urls)
        job = await wait_done(jobs, job_id, fleet, 60)
        assert (job.status, job.done, job.failed) == ("done", 200, 0)
        items = await jobs.backend.get_items(job_id, 0, 200)
        assert [i.url for i in items] == urls
        assert all(i.record and i.record["result"]["digest"] == url_digest(i.url) for i in items)
        pids = {i.record["result"]["pid"] for i in items if i.record}
        assert len(pids) >= 2  # work was shared
        stats = await jobs.backend.stats()
        assert stats.counters["items_done"] == 200  # no item counted twice
        for proc in fleet.procs:
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(15) for proc in fleet.procs] == [0, 0, 0]
    finally:
        await jobs.stop(0)


async def test_item_of_a_sigkilled_worker_is_completed_by_another_worker(
    redis_url: str, redis_prefix: str, fleet_factory: Any, tmp_path: Path
) -> None:
    fleet = fleet_factory(redis_url, redis_prefix)
    jobs = await open_jobs(redis_url, redis_prefix)
    try:
        procs = [fleet.spawn(concurrency=2) for _ in range(2)]
        await wait_workers(jobs, 2, fleet)
        marker = tmp_path / "hang-marker"
        urls = [
            *item_urls(5, "k", sleep=0.05),
            f"http://videos.example/hang.mp4?hang_once={marker}",
        ]
        job_id = await submit(jobs, urls)
        await wait_for(lambda: _exists(marker), 20, "an item to hang")
        await asyncio.sleep(0.1)  # the pid is written right after the file is created
        victim = int(marker.read_text())
        [proc] = [p for p in procs if p.pid == victim]
        proc.kill()
        proc.wait(10)
        job = await wait_done(jobs, job_id, fleet, 30)
        assert (job.status, job.done, job.failed) == ("done", 6, 0)
        hung = (await jobs.backend.get_items(job_id, 5, 6))[0]
        assert hung.record is not None
        assert hung.record["result"]["pid"] != victim
        assert hung.record["deliveries"] == 2
        assert (await jobs.backend.stats()).counters["items_done"] == 6
    finally:
        await jobs.stop(0)


async def _exists(path: Path) -> bool:
    return path.exists()


async def test_sigterm_finishes_short_items_releases_long_ones_and_exits_cleanly(
    redis_url: str, redis_prefix: str, fleet_factory: Any, tmp_path: Path
) -> None:
    fleet = fleet_factory(redis_url, redis_prefix)
    jobs = await open_jobs(redis_url, redis_prefix)
    try:
        proc = fleet.spawn(concurrency=2, grace_s=1.5)
        await wait_workers(jobs, 1, fleet)
        marker = tmp_path / "long"
        urls = [
            "http://videos.example/short.mp4?sleep=0.8",
            f"http://v.example/l.mp4?hang_once={marker}",
        ]
        job_id = await submit(jobs, urls)
        await wait_for(lambda: _exists(marker), 20, "the long item to start")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - t0 < 6
        short, long = await jobs.backend.get_items(job_id, 0, 2)
        assert short.state == "done"
        assert long.state == "queued"  # released: not started, not failed
        config = jobs.config
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            [pending] = client.xpending_range(
                config.key(config.batch_stream), config.group, "-", "+", 10
            )
        finally:
            client.close()
        # Handed back without counting the interrupted delivery, immediately reclaimable.
        assert pending["times_delivered"] == 0
        assert int(pending["time_since_delivered"]) >= config.visibility_timeout_s * 1000 - 200
    finally:
        await jobs.stop(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[Any]:
    """A private redis-server with AOF (everysec) that the test may kill and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not on PATH (needed to restart a private Redis)")
    port = _free_port()
    data = tmp_path / "redis-data"
    data.mkdir()
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory-policy", "noeviction", "--logfile", str(data / "redis.log"),
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=port, socket_timeout=0.5) as c:
                    c.ping()
                return proc
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    class Server:
        url = f"redis://127.0.0.1:{port}/0"

        def __init__(self) -> None:
            self.proc = start()

        def restart_after_crash(self, down_s: float) -> None:
            self.proc.kill()  # SIGKILL: no shutdown hook, AOF is what survives
            self.proc.wait(10)
            time.sleep(down_s)
            self.proc = start()

    yield Server()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_every_accepted_item_completes_across_a_redis_crash_and_restart(
    own_redis: Any, fleet_factory: Any
) -> None:
    prefix = "avserve-restart"
    fleet = fleet_factory(own_redis.url, prefix)
    jobs = await open_jobs(own_redis.url, prefix)
    try:
        for _ in range(2):
            fleet.spawn(concurrency=2)
        await wait_workers(jobs, 2, fleet)
        urls = item_urls(40, "r", sleep=0.2)
        job_id = await submit(jobs, urls)  # accepted = the submit script ran and replied

        async def some_done() -> bool:
            job = await jobs.backend.get_job(job_id)
            return job is not None and job.done >= 4

        await wait_for(some_done, 20, "a few items to finish")
        before = await jobs.backend.get_job(job_id)
        await asyncio.to_thread(own_redis.restart_after_crash, 1.0)
        assert before is not None and before.done < 40  # items were still queued/in flight
        job = await wait_done(jobs, job_id, fleet, 60)
        assert (job.status, job.done, job.failed) == ("done", 40, 0)
        items = await jobs.backend.get_items(job_id, 0, 40)
        assert [i.state for i in items] == ["done"] * 40
        assert (await jobs.backend.stats()).counters["items_done"] == 40
        assert all(p.poll() is None for p in fleet.procs)  # workers rode out the outage
    finally:
        await jobs.stop(0)
