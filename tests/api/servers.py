"""Real server processes on loopback for the e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.api.helpers import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


def serve_command(port: int) -> list[str]:
    """``avserve serve`` as installed (the console script may not be on PATH in a checkout)."""
    return [
        sys.executable,
        "-c",
        "from service.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]


def standin_command(port: int, delay_s: float) -> list[str]:
    return [sys.executable, "-m", "tests.api.standin_server", str(port), str(delay_s)]


@contextmanager
def running_server(
    make_cmd: Callable[[int], list[str]],
    env: Mapping[str, str],
    log_dir: Path,
    *,
    ready_timeout_s: float = 90,
) -> Iterator[ServerProcess]:
    """Start a server, wait until /v2/health/ready answers 200, stop it (SIGTERM) afterwards."""
    port = free_port()
    cmd = make_cmd(port)
    log_path = log_dir / f"server-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    full_env.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **env})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {ready_timeout_s} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
