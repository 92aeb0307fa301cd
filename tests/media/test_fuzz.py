"""Mutation fuzz: damaged real files never crash, hang or escape the limits of a worker.

Seeded: truncations, bit flips (anywhere and in headers), random blocks, extreme values in
header words, duplicated and zeroed regions, and pure noise, over real and generated files of
every allowed container. Each case takes the full request path (probe, snippets, clips)
through a DecodePool whose workers have a memory limit and a hard timeout.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from service.errors import AvserveError, MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    DecodePool,
    MediaPolicy,
    SnippetSpec,
    center_box,
)
from tests.media.synth import AudioSpec, write_video

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REAL_SEEDS = (
    "decord__video_90.mov",
    "croscodecs__bbb.h265",
    "mmaction2__test.avi",
    "decord__flipping_a_pancake.mkv",
    "moviepy__big_buck_bunny_432_433.webm",
    "decord__corrupted.mp4",
)
MUTATIONS_PER_SEED = 21
TYPED_CODES = {
    "unsupported_container",
    "unsupported_codec",
    "no_video_stream",
    "too_long",
    "too_large",
    "undecodable",
    "timeout",
    "empty_file",
}
POLICY = MediaPolicy(max_wall_s=10.0, max_decoded_frames=5000)


def synthetic_seeds(directory: Path) -> list[Path]:
    aac = AudioSpec(rate=22050, layout="mono", codec="aac")
    return [
        write_video(directory / "seed.mp4", frames=40, fps=20, audio=aac),
        write_video(directory / "seed.ts", frames=40, fps=20, audio=aac),
        write_video(directory / "seed.flv", frames=40, fps=20, audio=aac),
        write_video(
            directory / "seed.mkv", frames=20, fps=10, codec="libvpx-vp9",
            audio=AudioSpec(rate=48000, layout="stereo", codec="libopus"),
        ),
    ]  # fmt: skip


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(8)
    if kind == 0:  # truncation
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == 1:  # bit flips anywhere
        for _ in range(rng.randint(1, 32)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 2:  # bit flips in the header
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(min(len(buf), 4096))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 3:  # a random block
        i = rng.randrange(len(buf))
        n = rng.randint(1, 64)
        buf[i : i + n] = rng.randbytes(n)
    elif kind == 4:  # extreme values in header words (sizes, counts, dimensions, timestamps)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(0, max(min(len(buf), 2048) - 4, 1), 2)
            value = rng.choice(
                [b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\0\0\0"]
            )
            buf[i : i + 4] = value
    elif kind == 5:  # a region copied elsewhere
        i, j = rng.randrange(len(buf)), rng.randrange(len(buf))
        n = rng.randint(16, 4096)
        buf[j : j + n] = buf[i : i + n]
    elif kind == 6:  # a zeroed region
        i = rng.randrange(len(buf))
        buf[i : i + rng.randint(16, 8192)] = bytes(min(8192, len(buf)))[: rng.randint(16, 8192)]
    else:  # noise
        return rng.randbytes(rng.randint(1, 65536))
    return bytes(buf)


async def run_case(pool: DecodePool, path: Path) -> str:
    """The whole request path; returns "ok" or the error code."""
    try:
        info = await pool.probe(path)
        await pool.snippets(path, info, SnippetSpec(num_snippets=4, frame_size=32))
        box = center_box(info, 40, 32)
        windows = [ClipWindow(0.0, box), ClipWindow(info.duration_s / 2, box)]
        await pool.clips(path, info, windows, ClipSpec(num_frames=8, crop_size=32))
    except MediaError as e:
        return e.code
    except AvserveError as e:
        return f"untyped:{e.code}:{e.message}"
    return "ok"


async def test_mutated_media_only_ever_gives_typed_errors(media_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(20240613)
    seeds = [media_dir / name for name in REAL_SEEDS] + synthetic_seeds(tmp_path)
    cases: list[Path] = []
    for seed in seeds:
        data = seed.read_bytes()
        for k in range(MUTATIONS_PER_SEED):
            case = tmp_path / f"{seed.stem}.{k}{seed.suffix}"
            case.write_bytes(mutate(data, rng))
            cases.append(case)
    assert len(cases) >= 200

    outcomes: dict[str, str] = {}
    slowest = 0.0
    async with DecodePool(
        2, POLICY, memory_limit_bytes=1024**3, job_timeout_s=POLICY.max_wall_s + 5
    ) as pool:
        gate = asyncio.Semaphore(2)

        async def one(case: Path) -> None:
            nonlocal slowest
            async with gate:
                start = time.monotonic()
                outcomes[case.name] = await run_case(pool, case)
                slowest = max(slowest, time.monotonic() - start)

        await asyncio.gather(*(one(c) for c in cases))
        crashes, hard_timeouts = pool.stats.crashes, pool.stats.timeouts

    bad = {
        name: code for name, code in outcomes.items() if code != "ok" and code not in TYPED_CODES
    }
    assert not bad, bad
    assert crashes == 0 and hard_timeouts == 0
    assert slowest < 3 * POLICY.max_wall_s  # three jobs per case, each within its budget
    # the fuzz exercised both paths: damaged files that still decode, and refusals
    codes = set(outcomes.values())
    assert "ok" in codes and len(codes - {"ok"}) >= 2
