"""The peer benchmark's harness: the request body round-trips, the closed-loop client counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
