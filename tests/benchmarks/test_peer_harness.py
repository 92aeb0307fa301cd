"""The peer benchmark's harness: the request body round-trips, the closed-loop client counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers.client import run_closed_loop
from benchmarks.peers.payload import decode, random_clips
from service.runtime_spec import frames_audio_spec


def test_a_clip_survives_the_json_body_both_servers_decode() -> None:
    spec = frames_audio_spec(8, 32, 1600)
    body = random_clips(spec, 2, seed=3)
    a, b = decode(body[0], spec), decode(body[1], spec)
    assert a["frames"].shape == (8, 32, 32, 3) and a["frames"].dtype == np.uint8
    assert a["audio"].shape == (1600,) and a["audio"].dtype == np.float32
    assert not np.array_equal(a["frames"], b["frames"])  # distinct clips, not one repeated
    spec.check({k: v[None] for k, v in a.items()})


class _Handler(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        self.send_response(429 if type(self).calls % 4 == 0 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_the_closed_loop_client_sends_exactly_n_requests_and_times_only_the_200s(
    server: str,
) -> None:
    res = run_closed_loop(server, "/p", lambda i: {"json": {"i": i}}, concurrency=4, requests=20)
    assert sum(res.statuses.values()) == 20
    assert res.statuses[429] == 5 and res.ok == 15
    s = res.summary()
    assert s["concurrency"] == 4 and s["p50_ms"] <= s["p99_ms"]
    assert s["throughput_rps"] == pytest.approx(15 / res.wall_s, rel=1e-3)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_server_not_measured_is_paused_with_its_workers_and_resumes_after() -> None:
    from benchmarks.bench_peers import _group_cpu_s, _paused

    # A "server" whose worker child spins, as an idle LitServe's polling worker would.
    code = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'while True: pass']).wait()"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while (_group_cpu_s(proc.pid) or 0.0) < 0.2:  # the worker's CPU counts for the group
            assert time.monotonic() < deadline, "the spinning worker never showed up"
            time.sleep(0.05)
        worker = next(
            int(d.name)
            for d in Path("/proc").iterdir()
            if d.name.isdigit() and d.name != str(proc.pid) and _parent(int(d.name)) == proc.pid
        )
        with _paused([proc]):
            assert _state(proc.pid) == "T" and _state(worker) == "T"
            frozen = _group_cpu_s(proc.pid)
            time.sleep(0.2)
            assert _group_cpu_s(proc.pid) == frozen
        assert _state(proc.pid) != "T" and _state(worker) != "T"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
