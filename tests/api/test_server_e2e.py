"""A real gateway process on loopback: health, models, metrics, SIGTERM drain, disconnects."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.servers import running_server, serve_command, standin_command

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UPLOAD = {"file": ("clip.mp4", b"\x00" * 1000, "video/mp4")}


def gauge(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    for fam in text_string_to_metric_families(text):
        if fam.name == name:
            return float(fam.samples[0].value)
    raise AssertionError(f"{name} not exported")


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition never became true"
        time.sleep(0.05)


def test_avserve_serve_answers_health_models_and_metrics(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {"AVSERVE_MODEL_DIR": str(tiny_model_dir), "AVSERVE_DEVICE": "cpu"}
    with running_server(serve_command, env, tmp_path) as server:
        base = server.url
        assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
        assert httpx.get(f"{base}/v2/models/tiny/ready").status_code == 200
        models = httpx.get(f"{base}/v1/models").json()["models"]
        assert [m["name"] for m in models] == ["tiny"]
        resp = httpx.get(f"{base}/v1/models/none", headers={"X-Request-ID": "e2e-1"})
        assert resp.status_code == 404
        assert resp.json()["error"]["request_id"] == "e2e-1"
        assert "avserve_model_info" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/docs").status_code == 200
        server.terminate()
        assert server.wait(30) == 0
    log = server.log()
    assert "API docs: http://127.0.0.1:" in log
    assert '"request_id": "e2e-1"' in log  # JSON access line carries the client's id


def test_sigterm_drains_in_flight_work_refuses_new_work_and_exits_zero(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {"AVSERVE_MODEL_DIR": str(tiny_model_dir), "AVSERVE_DEVICE": "cpu"}
    with running_server(functools.partial(standin_command, delay_s=2.0), env, tmp_path) as server:
        base = server.url
        results: dict[str, httpx.Response] = {}
        slow = threading.Thread(
            target=lambda: results.update(
                r=httpx.post(f"{base}/v1/classify", files=UPLOAD, timeout=30)
            )
        )
        slow.start()
        wait_for(lambda: gauge(base, "avserve_http_requests_in_flight") == 1)
        server.terminate()
        wait_for(lambda: httpx.get(f"{base}/v2/health/ready").status_code == 503, timeout=5)
        ready = httpx.get(f"{base}/v2/health/ready").json()
        assert ready["error"]["code"] == "shutting_down"
        refused = httpx.post(f"{base}/v1/classify", files=UPLOAD, timeout=5)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        slow.join(30)
        assert results["r"].status_code == 200, results["r"].text
        assert server.wait(30) == 0


def test_sigterm_with_work_longer_than_the_grace_period_still_exits_promptly(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {
        "AVSERVE_MODEL_DIR": str(tiny_model_dir),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_SHUTDOWN_GRACE_S": "1",
    }
    with running_server(functools.partial(standin_command, delay_s=60), env, tmp_path) as server:
        base = server.url
        threading.Thread(
            target=lambda: httpx.post(f"{base}/v1/classify", files=UPLOAD, timeout=90),
            daemon=True,
        ).start()
        wait_for(lambda: gauge(base, "avserve_http_requests_in_flight") == 1)
        t0 = time.monotonic()
        server.terminate()
        assert server.wait(20) == 0
        assert time.monotonic() - t0 < 10


def test_a_client_that_hangs_up_has_its_work_cancelled(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {"AVSERVE_MODEL_DIR": str(tiny_model_dir), "AVSERVE_DEVICE": "cpu"}
    with running_server(functools.partial(standin_command, delay_s=60), env, tmp_path) as server:
        base = server.url
        host, port = base.removeprefix("http://").split(":")
        body = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n" + b"\x00" * 100 + b"\r\n--b--\r\n"
        )
        head = (
            f"POST /v1/classify HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + body)
            wait_for(lambda: gauge(base, "avserve_http_requests_in_flight") == 1)
        # The socket is closed: the server notices, cancels the work, frees the slot.
        wait_for(lambda: gauge(base, "avserve_http_requests_in_flight") == 0, timeout=10)
    assert '"status": 499' in server.log()  # logged as a client hang-up, not as an error
    assert "unhandled error" not in server.log()
