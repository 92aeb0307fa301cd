"""The model thread: every torch call of the serving path runs on one thread (issue 19)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from service.batcher import BatcherConfig
from service.executor import ModelThread, model_thread
from service.inline_decoder import InlineDecoder
from service.pipeline import Pipeline
from service.registry import ModelRegistry, load_registry
from service.runtime_spec import RuntimeKind
from service.schemas import ClassifyOptions, InferFn
from service.warmup import write_warmup_video


@pytest.fixture
def thread() -> Iterator[ModelThread]:
    t = ModelThread(name="test-model")
    yield t
    t.shutdown()


def test_calls_from_many_threads_run_on_the_model_thread_in_order(thread: ModelThread) -> None:
    seen: list[tuple[int, int]] = []

    def record(i: int) -> int:
        seen.append((i, threading.get_ident()))
        return i * i

    futures = [thread.submit(record, i) for i in range(20)]
    callers = [threading.Thread(target=thread.call, args=(record, 100 + i)) for i in range(4)]
    for c in callers:
        c.start()
    for c in callers:
        c.join()
    assert [f.result() for f in futures] == [i * i for i in range(20)]
    assert {ident for _, ident in seen} == {thread.ident}
    assert thread.ident != threading.get_ident()
    assert [i for i, _ in seen if i < 100] == list(range(20))  # FIFO


async def test_errors_reach_the_awaiting_caller(thread: ModelThread) -> None:
    def boom() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        await thread.run(boom)
    with pytest.raises(ValueError, match="bad batch"):
        thread.call(boom)
    assert await thread.run(lambda: 7) == 7  # the thread survives a failed call


def test_a_call_made_on_the_model_thread_runs_inline(thread: ModelThread) -> None:
    def outer() -> int:
        return thread.call(threading.get_ident)  # queued, it would wait for itself

    assert thread.call(outer) == thread.ident


def test_shutdown_finishes_queued_calls_then_refuses_new_ones(thread: ModelThread) -> None:
    gate = threading.Event()
    first = thread.submit(gate.wait, 5)
    queued = thread.submit(lambda: "ran")
    gate.set()
    thread.shutdown(wait=True)
    assert first.result() is True and queued.result() == "ran"
    assert not thread.alive
    with pytest.raises(RuntimeError, match="shut down"):
        thread.submit(lambda: None)


def test_shutdown_can_cancel_what_has_not_started(thread: ModelThread) -> None:
    gate = threading.Event()
    running = thread.submit(gate.wait, 5)
    waiting = thread.submit(lambda: "never")
    while not running.running():
        pass
    thread.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(timeout=5) is True
    assert waiting.cancelled()


def test_the_process_model_thread_is_one_and_comes_back_after_a_shutdown() -> None:
    first = model_thread()
    assert model_thread() is first
    first.shutdown()
    second = model_thread()
    assert second is not first and second.alive
    assert second.call(threading.get_ident) == second.ident


# -- the serving path ----------------------------------------------------------------------------
class _Recorder:
    """Thread idents seen inside the heavy runtime's and the glance net's calls."""

    def __init__(self) -> None:
        self.idents: set[int] = set()
        self.calls = 0

    def hook(self, *_: Any) -> None:
        self.idents.add(threading.get_ident())
        self.calls += 1


def _registry(package_dir: Path, runtime: RuntimeKind, tmp_path: Path) -> ModelRegistry:
    def pipeline(package: Any, infer: InferFn) -> Pipeline:
        return Pipeline(package, InlineDecoder(), infer)

    return load_registry(
        package_dir,
        pipeline=pipeline,
        runtime=runtime,
        device="cpu",
        fp16=False,
        threads=0,
        batcher=BatcherConfig(max_batch_size=4, max_queue_delay_ms=2.0),
        cache_dir=tmp_path / "exports",
        default_model=None,
        warmup_batch_size=1,
    )


def _record_heavy(model: Any, recorder: _Recorder) -> None:
    runtime = model.runtime
    module = getattr(runtime, "_module", None)
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.jit.ScriptModule):
        module.register_forward_pre_hook(recorder.hook)  # the eager forward itself
        return
    real_run = runtime.run

    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        recorder.hook()
        return real_run(inputs)

    runtime.run = run


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["eager", "torchscript", "onnx"])
async def test_every_model_call_of_a_classify_runs_on_the_model_thread(
    tiny_package_dir: Path, tmp_path: Path, runtime: RuntimeKind
) -> None:
    registry = await asyncio.to_thread(_registry, tiny_package_dir, runtime, tmp_path)
    model = registry.get()
    pipeline = model.pipeline
    assert isinstance(pipeline, Pipeline) and pipeline.glance is not None
    heavy, glance = _Recorder(), _Recorder()
    _record_heavy(model, heavy)
    pipeline.glance.net.register_forward_pre_hook(glance.hook)
    video = write_warmup_video(tmp_path / "v.mp4", seconds=3.0)
    await registry.start()
    try:
        results = await asyncio.gather(
            *(pipeline.classify(video, ClassifyOptions(policy="glance", k=2)) for _ in range(3))
        )
        # A caller on some other thread still gets its glance computed on the model thread.
        snippets = await InlineDecoder().snippets(
            video, await InlineDecoder().probe(video), pipeline.glance.snippet_spec
        )
        await asyncio.to_thread(pipeline.glance.score, snippets)
    finally:
        await registry.close(5.0)
    assert all(r.k >= 1 for r in results)
    assert heavy.calls >= 2 and glance.calls == 4
    assert heavy.idents == glance.idents == {model_thread().ident}
