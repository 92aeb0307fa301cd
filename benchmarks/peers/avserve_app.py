"""avserve's side of the LitServe comparison: its runtime and dynamic batcher behind uvicorn.

``POST /predict`` takes one pre-decoded clip (``benchmarks.peers.payload``) and answers its
logits, like the LitServe app. The model runs through ``service.runtimes.build_runtime`` and
``service.batcher.DynamicBatcher`` on the process's model thread, as the gateway runs them, with the batching
knobs set to LitServe's (max batch 8, 5 ms) and the start-up batch-size tuning the gateway
runs (``DynamicBatcher.tune``, which may cap the batches below 8); the media and HTTP layers of
the gateway are not involved because LitServe has none. It starts as ``avserve serve`` does:
glibc's malloc told to keep freed activations (``service.malloc_tuning``), the heap frozen
once ready (``service.heap``), the batcher's defaults (``BatcherConfig``: arrival-rate-aware
delay, full batches on one thread fewer).

    python -m benchmarks.peers.avserve_app --package DIR --port 8101
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from benchmarks.peers.payload import decode
from service.heap import startup_heap


def build_app(
    package_dir: Path, max_batch: int, timeout_s: float, on_ready: Callable[[], object]
) -> FastAPI:
    from models import load_package
    from service.batcher import BatcherConfig, DynamicBatcher
    from service.executor import model_thread
    from service.runtimes import build_runtime

    # As service.registry does: the package is read and the model built on the model thread,
    # where the batcher runs it, so the process has one OpenMP team. (Reading the package on
    # the main thread made a batch-1 forward of the shipped model cost 20-27 ms, not 11.)
    runtime = model_thread().call(lambda: build_runtime(load_package(package_dir), "eager", "cpu"))
    # Seconds inside the forward, as the LitServe app counts them: busy share = this / wall.
    forward = runtime.run
    busy = {"s": 0.0}

    def timed_run(inputs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return forward(inputs)
        finally:
            busy["s"] += time.perf_counter() - t0

    runtime.run = timed_run  # type: ignore[method-assign]
    cfg = BatcherConfig(max_batch_size=max_batch, max_queue_delay_ms=timeout_s * 1000)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with DynamicBatcher(runtime, cfg) as batcher:
            await batcher.warmup(1)
            await batcher.warmup(max_batch)
            if cfg.autotune:  # as service.registry does before "ready"
                await batcher.tune()
            state["batcher"] = batcher
            on_ready()
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        x = decode(await request.json(), runtime.spec)
        logits = await state["batcher"].infer({k: v[None] for k, v in x.items()})
        return {"logits": logits[0].tolist()}

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/stats")
    async def stats() -> dict[str, float]:
        b = state["batcher"]
        return {
            "batches": b.exec_count,
            "clips": b.inference_count,
            "predict_s": busy["s"],
            "spared": b.spare_choice.short_batches,
        }

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--package", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--timeout", type=float, default=0.005, help="batch timeout (s)")
    args = p.parse_args()
    from service.malloc_tuning import retain_freed_memory
    from service.settings import Settings

    # As `avserve serve` starts: glibc keeps freed activations (service.malloc_tuning, the
    # service's default threshold) before torch allocates; no cyclic collections while torch
    # and the model load, the heap frozen once ready (service.heap).
    retain_freed_memory(Settings().malloc_trim_threshold_mb)
    with ExitStack() as starting:
        starting.enter_context(startup_heap())
        app = build_app(args.package, args.max_batch, args.timeout, on_ready=starting.close)
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
