"""End-to-end part of the serving benchmark: a real ``avserve serve`` process, real uploads.

For batching on and off, one server is started on loopback with the given model package and
``benchmarks.peers.client`` uploads a real video from ../shared/media at concurrency 1 / 4 / 16
(policy ``uniform``, K=2 windows, so that decode cost is the same for every request).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.peers.client import closed_loop

REPO = Path(__file__).resolve().parents[1]
VIDEO = "mdn-ie__flower.mp4"
LOAD = {1: 4, 4: 8, 16: 16}  # concurrency -> requests
CLASSIFY = "/v1/classify"


def _shared_media() -> Path:
    env = os.environ.get("AVSERVE_SHARED_DIR")
    return (Path(env) if env else REPO.parent / "shared") / "media"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(model_dir: Path, batching: bool, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "AVSERVE_MODEL_DIR": str(model_dir),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_LOG_LEVEL": "warning",
        "AVSERVE_BATCHER__CROSS_REQUEST": "true" if batching else "false",
        "AVSERVE_MAX_CONCURRENT_REQUESTS": "64",
    }
    cmd = [
        sys.executable,
        "-c",
        "from service.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_e2e(console: Console, model_dir: Path) -> dict[str, Any]:
    video_path = _shared_media() / VIDEO
    if not video_path.is_file():
        return {"skipped": f"{video_path} not found"}
    video = video_path.read_bytes()

    def upload(_: int) -> dict[str, Any]:
        return {"files": {"file": ("video", video)}, "data": {"policy": "uniform", "k": "2"}}

    # A package directory is served through its parent (a directory of packages).
    serve_dir = model_dir.parent if (model_dir / "config.json").is_file() else model_dir
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for batching in (True, False):
            proc, url = _start(serve_dir, batching, Path(tmp) / f"server-{batching}.log")
            try:
                asyncio.run(closed_loop(url, CLASSIFY, upload, concurrency=1, requests=2))
                for c, n in LOAD.items():
                    res = asyncio.run(closed_loop(url, CLASSIFY, upload, concurrency=c, requests=n))
                    rows.append({"batching": "on" if batching else "off", **res.summary()})
            finally:
                _stop(proc)
    table = Table(title=f"End to end: POST /v1/classify ({VIDEO}, uniform, K=2), real server")
    for col in ("batching", "conc.", "ok", "req/s", "p50 ms", "p95 ms", "p99 ms", "statuses"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["batching"],
            str(r["concurrency"]),
            str(r["ok"]),
            f"{r['throughput_rps']:.2f}",
            f"{r['p50_ms']:.0f}",
            f"{r['p95_ms']:.0f}",
            f"{r['p99_ms']:.0f}",
            str(r["statuses"]),
        )
    console.print(table)
    return {"video": VIDEO, "rows": rows}
