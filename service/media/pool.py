"""Decode worker pool: untrusted decoding in separate, limited, replaceable processes.

Each worker is a fresh interpreter (see ``service.media.worker``) with an address-space limit;
every job has a wall-clock timeout enforced by the pool (the worker also enforces the
policy's own ``max_wall_s`` cooperatively). A worker is recycled after ``max_jobs_per_worker``
jobs. A worker that crashes or hangs fails only its own job (``worker_crashed`` /
``timeout``); it is killed and replaced in the background while the pool keeps serving.

The async methods never block the event loop: each job waits for its worker in a thread of
the pool's own executor. Cancelling a job kills its worker (so no orphaned decode keeps a CPU
busy) and the pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import service
from service.errors import AvserveError, CapacityError, MediaError
from service.media import wire
from service.media.policy import MediaPolicy
from service.media.types import (
    ClipBatch,
    ClipSpec,
    ClipWindow,
    GlanceSnippets,
    MediaInfo,
    SnippetSpec,
)

_PACKAGE_ROOT = str(Path(service.__file__).resolve().parents[1])


@dataclass
class PoolStats:
    jobs: int = 0
    crashes: int = 0
    timeouts: int = 0
    started: int = 0  # worker processes started, replacements included


class _Worker:
    """One worker process and its end of the socket. Used by one thread at a time."""

    def __init__(self, memory_limit_bytes: int, start_timeout_s: float) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        # Virtual-memory hygiene under RLIMIT_AS: few malloc arenas, single-threaded BLAS.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        cmd = [sys.executable, "-m", "service.media.worker", "--fd", str(child.fileno())]
        cmd += ["--memory-limit", str(memory_limit_bytes)]
        try:
            self.proc = subprocess.Popen(
                cmd, env=env, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL
            )
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.jobs = 0
        self.broken = False
        if not self.conn.poll(start_timeout_s):
            self.kill()
            raise AvserveError("decode worker did not start in time", code="internal")
        try:
            greeting = wire.recv(self.conn)
        except (EOFError, OSError, wire.WireError) as e:
            self.kill()
            raise AvserveError(f"decode worker failed to start: {e}", code="internal") from e
        if greeting is None or greeting[0] != "ready":
            self.kill()
            raise AvserveError("decode worker sent a bad greeting", code="internal")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, op: str, args: tuple[Any, ...], timeout_s: float) -> tuple[str, Any]:
        """Run one job; returns ("ok", result), ("err", error), ("crashed", rc) or ("timeout",).

        Replies are decoded by ``service.media.wire`` (data only): a worker that answers
        anything else is treated like a crashed one.
        """
        self.jobs += 1
        try:
            wire.send(self.conn, "job", {"op": op, "args": args})
            reply = wire.recv(self.conn, time.monotonic() + timeout_s)
            if reply is None:
                self.kill()
                return ("timeout", None)
            kind, value = reply
            if kind == "ok":
                return ("ok", value)
            if kind == "err":
                return ("err", wire.error_from(value))
            raise wire.WireError(f"unexpected reply {kind!r}")
        except (EOFError, OSError, wire.WireError):
            self.kill()
            return ("crashed", self.proc.returncode)

    def stop(self, grace_s: float = 1.0) -> None:
        with contextlib.suppress(OSError, EOFError):
            wire.send(self.conn, "stop")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace_s)
        self.kill()

    def kill(self) -> None:
        self.broken = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        with contextlib.suppress(OSError):
            self.conn.close()


class DecodePool:
    """Async facade over decode worker processes (``await pool.probe(path)`` etc.)."""

    def __init__(
        self,
        workers: int | MediaPolicy | None = None,
        policy: MediaPolicy | None = None,
        *,
        max_jobs_per_worker: int = 200,
        memory_limit_bytes: int = 2 * 1024**3,
        job_timeout_s: float | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        if isinstance(workers, MediaPolicy):  # DecodePool(policy) reads naturally too
            workers, policy = None, workers
        self.size = max(1, workers if workers is not None else os.cpu_count() or 1)
        self.policy = policy or MediaPolicy()
        self.max_jobs_per_worker = max(1, max_jobs_per_worker)
        self.memory_limit_bytes = memory_limit_bytes
        # The worker stops itself at max_wall_s; the hard kill leaves it time to say so.
        self.job_timeout_s = job_timeout_s or self.policy.max_wall_s + 10.0
        self.start_timeout_s = start_timeout_s
        self.stats = PoolStats()
        self._executor = ThreadPoolExecutor(self.size * 2, thread_name_prefix="avserve-decode")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._stopping: asyncio.Event | None = None  # set by close(); wakes waiting jobs
        self._closed = False
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()  # guards _all and stats.started (spawned off-loop)
        self._start_lock = asyncio.Lock()
        self._background: set[asyncio.Future[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker processes (also done lazily by the first job)."""
        async with self._start_lock:
            if self._closed:
                raise CapacityError("the decode pool is closed", code="shutting_down")
            if self._idle is not None:
                return
            loop = asyncio.get_running_loop()
            started = await asyncio.gather(
                *(loop.run_in_executor(self._executor, self._spawn) for _ in range(self.size)),
                return_exceptions=True,
            )
            errors = [w for w in started if isinstance(w, BaseException)]
            if errors:
                for w in started:
                    if isinstance(w, _Worker):
                        w.kill()
                raise errors[0]
            idle: asyncio.Queue[_Worker] = asyncio.Queue()
            for w in started:
                assert isinstance(w, _Worker)
                idle.put_nowait(w)
            self._stopping = asyncio.Event()
            self._idle = idle

    async def close(self) -> None:
        """Stop every worker; jobs still waiting for a worker fail with ``shutting_down``."""
        if self._closed:
            return
        self._closed = True
        if self._stopping is not None:
            self._stopping.set()
        for task in list(self._background):
            task.cancel()
        with self._lock:
            workers = list(self._all)
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, w.stop) for w in workers), return_exceptions=True
        )
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> DecodePool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for metrics and tests)."""
        with self._lock:
            return sorted(w.pid for w in self._all if not w.broken)

    # -- jobs -----------------------------------------------------------------------------------

    async def probe(self, path: Path, policy: MediaPolicy | None = None) -> MediaInfo:
        result: MediaInfo = await self._run("probe", (Path(path), policy or self.policy))
        return result

    async def snippets(
        self,
        path: Path,
        info: MediaInfo,
        spec: SnippetSpec | None = None,
        policy: MediaPolicy | None = None,
    ) -> GlanceSnippets:
        args = (Path(path), info, spec or SnippetSpec(), policy or self.policy)
        result: GlanceSnippets = await self._run("snippets", args)
        return result

    async def clips(
        self,
        path: Path,
        info: MediaInfo,
        windows: Sequence[ClipWindow],
        spec: ClipSpec | None = None,
        policy: MediaPolicy | None = None,
    ) -> ClipBatch:
        args = (Path(path), info, list(windows), spec or ClipSpec(), policy or self.policy)
        result: ClipBatch = await self._run("clips", args)
        return result

    # -- internals ------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        worker = _Worker(self.memory_limit_bytes, self.start_timeout_s)
        with self._lock:
            self._all.add(worker)
            self.stats.started += 1
        return worker

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)

    async def _acquire(self) -> _Worker:
        await self.start()
        assert self._idle is not None and self._stopping is not None
        get = asyncio.ensure_future(self._idle.get())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not get.done():
                get.cancel()
        if get.cancelled():
            raise CapacityError("the decode pool is closed", code="shutting_down")
        worker = get.result()
        if self._closed:
            self._idle.put_nowait(worker)
            raise CapacityError("the decode pool is closed", code="shutting_down")
        return worker

    async def _run(self, op: str, args: tuple[Any, ...]) -> Any:
        worker = await self._acquire()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, worker.call, op, args, self.job_timeout_s)
        try:
            reply = await asyncio.shield(job)
        except asyncio.CancelledError:
            # Nobody wants the result: kill the decode now (the job thread sees EOF and
            # cleans up); the worker is replaced like a crashed one.
            worker.broken = True
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()
            raise
        finally:
            self._release(worker)
        self.stats.jobs += 1
        kind, value = reply
        if kind == "ok":
            return value
        if kind == "err":
            raise value
        if kind == "timeout":
            self.stats.timeouts += 1
            raise MediaError(
                f"decoding did not finish within {self.job_timeout_s:g} s", code="timeout"
            )
        self.stats.crashes += 1
        raise MediaError(
            f"the decode worker died while decoding this file (exit status {value})",
            code="worker_crashed",
        )

    def _release(self, worker: _Worker) -> None:
        assert self._idle is not None
        if not worker.broken and worker.jobs < self.max_jobs_per_worker and not self._closed:
            self._idle.put_nowait(worker)
            return
        if not worker.broken:
            self._background_call(worker.stop)  # recycled after max_jobs_per_worker
        self._forget(worker)
        if not self._closed:
            self._background_replace()

    def _background_call(self, fn: Any) -> None:
        loop = asyncio.get_running_loop()
        task: asyncio.Future[None] = loop.run_in_executor(self._executor, fn)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _background_replace(self) -> None:
        async def replace() -> None:
            loop = asyncio.get_running_loop()
            for attempt in range(3):
                try:
                    worker = await loop.run_in_executor(self._executor, self._spawn)
                except AvserveError:
                    await asyncio.sleep(0.5 * (attempt + 1))
                    continue
                assert self._idle is not None
                if self._closed:
                    await loop.run_in_executor(None, worker.stop)
                    return
                self._idle.put_nowait(worker)
                return

        task = asyncio.ensure_future(replace())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
