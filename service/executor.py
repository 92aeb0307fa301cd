"""The model thread: one thread per process runs every torch and ONNX Runtime computation.

Why one: with OpenMP (torch's CPU backend) every OS thread that enters a parallel region
becomes the master of its own team of worker threads. Once two threads of a process have run
torch ops there are two teams whose spinning workers compete for the same cores, and a batch-1
forward of the shipped model costs about twice what it costs in a process where only one
thread ever ran torch (issue 19: 12-15 ms against 27-30 ms on 2 cores). So model loading and
export, the heavy runtimes (eager, TorchScript, ONNX Runtime), the glance network and warm-up
all run here, one call at a time, and the process has a single OpenMP team, as LitServe's
one inference worker has.

``model_thread()`` is the process-wide instance. It is a ``concurrent.futures.Executor`` (so
``loop.run_in_executor`` and the batcher take it as is); ``run`` awaits a call from asyncio,
``call`` blocks a plain thread. A call made from the model thread itself runs inline, so code
that is already on it (a pipeline built while the registry loads) never deadlocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ModelThread(Executor):
    """A single long-lived thread that runs submitted calls in order (FIFO)."""

    def __init__(self, name: str = "avserve-model") -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()  # orders submit against shutdown
        # Daemon: a forgotten shutdown must not keep the interpreter alive at exit.
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int:
        """``threading.get_ident()`` of the model thread."""
        ident = self._thread.ident
        assert ident is not None  # started in __init__
        return ident

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def on_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        fut: Future[T] = Future()
        if self.on_thread():  # nested call: queueing it would wait for itself
            _execute(fut, fn, args, kwargs)
            return fut
        with self._lock:
            if self._closed:
                raise RuntimeError("the model thread is shut down")
            self._queue.put((fut, fn, args, kwargs))
        return fut

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the model thread and wait for it (from a thread that is not a loop)."""
        return self.submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the model thread without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; queued ones still run unless ``cancel_futures``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                with contextlib.suppress(queue.Empty):
                    while True:
                        work = self._queue.get_nowait()
                        if work is not None:
                            work[0].cancel()
            self._queue.put(None)
        if wait and not self.on_thread():
            self._thread.join()

    def _loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            fut, fn, args, kwargs = work
            if fut.set_running_or_notify_cancel():
                _execute(fut, fn, args, kwargs)
            del work, fut, fn, args, kwargs  # drop references to inputs and results now


def _execute(
    fut: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # handed to the waiter, which re-raises it
        fut.set_exception(e)
    else:
        fut.set_result(result)


_instance: ModelThread | None = None
_instance_lock = threading.Lock()


def model_thread() -> ModelThread:
    """The process's model thread (started on first use; a new one after a shutdown)."""
    global _instance
    with _instance_lock:
        if _instance is None or not _instance.alive:
            _instance = ModelThread()
            log.debug("model thread started (ident %d)", _instance.ident)
        return _instance


def set_torch_threads(threads: int) -> None:
    """Intra-op threads of the model thread's OpenMP team (0 = leave torch's default).

    Set on the model thread itself: OpenMP keeps the thread count per calling thread.
    """
    if threads <= 0:
        return

    def apply() -> None:
        import torch

        torch.set_num_threads(threads)

    model_thread().call(apply)


def run_with_spare_threads(spare: int, fn: Callable[[T], R], arg: T) -> R:
    """``fn(arg)`` on ``spare`` fewer torch intra-op threads (at least one), then restore them.

    Called on the model thread, whose OpenMP team it resizes. ONNX Runtime keeps its own
    thread pool and ignores it; without torch loaded it is a plain call.
    """
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 1
    if spare <= 0 or threads <= 1:
        return fn(arg)
    assert torch is not None
    torch.set_num_threads(max(1, threads - spare))
    try:
        return fn(arg)
    finally:
        torch.set_num_threads(threads)
