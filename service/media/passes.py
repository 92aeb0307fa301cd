"""Video reads of one request spread over several decoders, one thread each.

With the probe's keyframe index a read falls apart into independent GOP passes (``gop_plan``):
each starts at a keyframe and needs nothing decoded before it. The passes are cut into
contiguous runs of about equal estimated cost, and each run is decoded by its own thread with
its own container and a single-threaded decoder. FFmpeg releases the GIL while it decodes, so
the runs proceed in parallel; a single-threaded decoder also spends less CPU per frame than
frame threading, whose pipeline empties at every seek. The first run decodes on the caller's
container in the caller's thread, followed there by the caller's other work (its audio
windows), while the other runs decode.

Frames are the same as a single decoder's: every run seeks to the keyframe of its first GOP,
as the serial plan does wherever seeking pays (only the concealment of corrupt packets may
differ, as it does between decoder thread counts). Without an index, with ``decoder_threads`` 1,
or with one GOP to read, it is the serial ``FrameSampler`` (with frame threading). A media
error in any run re-reads everything serially on a fresh container, so damaged files fail
(or pass) exactly as they do with one decoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av

from service.errors import MediaError
from service.media import gop_plan
from service.media.container import Deadline, open_input
from service.media.policy import MediaPolicy
from service.media.types import MediaInfo
from service.media.video import FrameSampler
from service.media.walk import Emit

T = TypeVar("T")


@dataclass(frozen=True)
class FrameReadStats:
    decoded_frames: int
    seeks: int
    decode_errors: int
    coverage: float
    decoders: int  # decoders that ran at once (1: serial)
    plan: dict[str, Any] | None  # gop_plan summary of the whole read


def split_runs(
    reads: Sequence[gop_plan.Read],
    keyframes: Sequence[float],
    cost: gop_plan.CostModel,
    parts: int,
) -> list[list[int]]:
    """The instants of ``reads`` (``gop_plan.choose_reads``, in time order) cut into at most
    ``parts`` runs of whole GOP passes, in time order, balanced by estimated decode cost (each
    pass priced as if it starts with a seek)."""
    groups: dict[int, list[gop_plan.Read]] = {}
    for r in reads:
        groups.setdefault(gop_plan.gop_of(keyframes, r.time_s), []).append(r)
    costs = []
    for g, group in groups.items():
        if all(r.keyframe_only for r in group):
            costs.append(1.0 + cost.seek_frames)
            continue
        exact = sum(not r.keyframe_only for r in group)
        span = cost.scan(group[-1].time_s - keyframes[g])
        costs.append(span + exact * (1.0 - cost.ref_fraction) + 1.0 + cost.seek_frames)
    runs: list[list[int]] = []
    current: list[int] = []
    total, done = sum(costs), 0.0
    for (_, group), c in zip(groups.items(), costs, strict=True):
        target = total * (len(runs) + 1) / parts
        # cut before this GOP when that lands nearer the run's share than cutting after it
        if current and len(runs) < parts - 1 and done + c - target > target - done:
            runs.append(current)
            current = []
        current.extend(r.instant for r in group)
        done += c
    if current:
        runs.append(current)
    return runs


def _sample(
    container: av.container.InputContainer,
    info: MediaInfo,
    policy: MediaPolicy,
    deadline: Deadline,
    instants: Sequence[float],
    emit: Emit,
    tolerance_s: float,
) -> FrameSampler:
    sampler = FrameSampler(container, info, policy, deadline)
    sampler.sample(instants, emit, tolerance_s=tolerance_s)
    return sampler


def _alone(sampler: FrameSampler) -> FrameReadStats:
    """The stats of a read done by one decoder."""
    return _stats([sampler], sampler.plan.summary() if sampler.plan is not None else None)


def _stats(samplers: Sequence[FrameSampler], plan: dict[str, Any] | None) -> FrameReadStats:
    return FrameReadStats(
        decoded_frames=sum(s.stats.decoded_frames for s in samplers),
        seeks=sum(s.stats.seeks for s in samplers),
        decode_errors=sum(s.stats.decode_errors for s in samplers),
        coverage=min(s.stats.coverage for s in samplers),
        decoders=len(samplers),
        plan=plan,
    )


def read_frames(
    path: Path,
    container: av.container.InputContainer,
    info: MediaInfo,
    policy: MediaPolicy,
    deadline: Deadline,
    instants: Sequence[float],
    make_emit: Callable[[], Emit],
    then: Callable[[], T],
    *,
    tolerance_s: float = 0.0,
) -> tuple[FrameReadStats, T]:
    """Emit a frame for every instant (see ``FrameSampler.sample``) and return the stats with
    ``then()``'s result. ``then`` runs on ``container`` in this thread after this thread's
    share of the video, while the other runs may still decode. ``make_emit`` gives each
    decoder its own callback (they run at once; callbacks write disjoint instants)."""
    keyframes = info.video.keyframes_s
    parts = max(policy.decoder_threads, 1)
    runs: list[list[int]] = []
    plan: dict[str, Any] | None = None
    if keyframes and parts > 1 and info.video.timing != "index" and len(instants) > 1:
        fps = info.video.fps or policy.fallback_fps
        cost = gop_plan.CostModel(fps, gop_plan.ref_fraction(info.video.codec))
        margin = 0.6 / fps
        reads = gop_plan.choose_reads(instants, keyframes, tolerance_s, margin)
        runs = split_runs(reads, keyframes, cost, parts)
        plan = gop_plan.plan_reads(reads, keyframes, info.duration_s, cost).summary()
    if len(runs) < 2:
        stats = _alone(
            _sample(container, info, policy, deadline, instants, make_emit(), tolerance_s)
        )
        return stats, then()
    single = dataclasses.replace(policy, decoder_threads=1)
    run_deadline = deadline.child()  # cancelled when another run or ``then`` fails

    def sample_run(run_container: av.container.InputContainer, run: list[int]) -> FrameSampler:
        emit = make_emit()

        def local(j: int, t: float, frame: av.VideoFrame) -> None:
            emit(run[j], t, frame)  # run[j]: the caller's index of the run's j-th instant

        chosen = [instants[i] for i in run]
        return _sample(run_container, info, single, run_deadline, chosen, local, tolerance_s)

    def sample_run_alone(run: list[int]) -> FrameSampler:
        with open_input(path, single) as own:
            return sample_run(own, run)

    # The first run decodes on the caller's container in this thread, then ``then`` reads
    # there; the other runs get their own containers and threads meanwhile.
    with ThreadPoolExecutor(len(runs) - 1, thread_name_prefix="avserve-decode") as pool:
        futures = [pool.submit(sample_run_alone, run) for run in runs[1:]]
        try:
            first = sample_run(container, runs[0])
            result = then()
            samplers = [first, *(f.result() for f in futures)]
        except MediaError:
            run_deadline.cancel()
            samplers = []
        except BaseException:
            run_deadline.cancel()
            raise
    if samplers:
        return _stats(samplers, plan), result
    # a run failed: read again with one decoder, so errors are exactly the serial ones
    with open_input(path, policy) as fresh:
        stats = _alone(_sample(fresh, info, policy, deadline, instants, make_emit(), tolerance_s))
    return stats, then()
