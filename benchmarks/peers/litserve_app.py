"""LitServe's side of the comparison: the same serving graph behind LitServe's own batching.

``POST /predict`` takes one pre-decoded clip (``benchmarks.peers.payload``) and answers its
logits. The model is the one avserve runs (``service.runtimes.build_runtime``, eager, the
same package), so only the serving layer differs; batching is LitServe's (``max_batch_size``,
``batch_timeout``), one inference worker on the CPU as LitServe's defaults give.

    python -m benchmarks.peers.litserve_app --package DIR --port 8102
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np

from benchmarks.peers.payload import decode


class ClipAPI(ls.LitAPI):  # type: ignore[misc]
    def __init__(
        self, package_dir: Path, max_batch: int, timeout_s: float, stats_file: Path | None
    ) -> None:
        super().__init__(max_batch_size=max_batch, batch_timeout=timeout_s)
        self.package_dir = package_dir
        self.max_batch = max_batch
        # The worker is another process than the HTTP server: batch sizes go through a file.
        self.stats_file = stats_file
        self.batches = self.clips = 0
        self.predict_s = 0.0

    def setup(self, device: str) -> None:
        from models import load_package
        from service.runtimes import build_runtime

        self.runtime = build_runtime(load_package(self.package_dir), "eager", "cpu")
        self.runtime.warmup(1)
        self.runtime.warmup(self.max_batch)

    # Left unannotated on purpose: LitServe reads the annotation as the request type, and none
    # gives its default path (the body parsed with ``request.json()``).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return decode(request, self.runtime.spec)

    def batch(self, inputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {n: np.stack([x[n] for x in inputs]) for n in inputs[0]}

    def predict(self, x: dict[str, np.ndarray]) -> np.ndarray:
        lone = x["frames"].ndim == 4  # a request LitServe did not batch
        t0 = time.perf_counter()
        out = self.runtime.run({n: a[None] for n, a in x.items()} if lone else x)
        self.predict_s += time.perf_counter() - t0
        self.batches += 1
        self.clips += 1 if lone else len(out)
        if self.stats_file is not None:
            self.stats_file.write_text(f"{self.batches} {self.clips} {self.predict_s:.4f}")
        return out[0] if lone else out

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        return {"logits": output.tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--package", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--timeout", type=float, default=0.005, help="batch timeout (s)")
    p.add_argument("--stats-file", type=Path, default=None)
    p.add_argument("--fast-queue", action="store_true", help="LitServe's ZeroMQ queues")
    args = p.parse_args()
    api = ClipAPI(args.package, args.max_batch, args.timeout, args.stats_file)
    server = ls.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=1,
        timeout=600,
        fast_queue=args.fast_queue,
    )
    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
