"""The Locust load test: its locustfile loads, its profiles pace arrivals, its SLO checker judges."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtests.profiles import JOB_DONE, UPLOAD, URL, Profile, Slo, Stage, get_profile
from loadtests.slo import check, read_stats

REPO = Path(__file__).resolve().parents[2]
STATS = Path(__file__).parent / "fixtures" / "locust_stats.csv"


def _profile(**slos: Slo) -> Profile:
    return Profile(
        name="t",
        stages=(Stage(10, 1.0),),
        mix={"upload": 1.0},
        slos={UPLOAD: slos.get("upload", Slo()), URL: slos.get("url", Slo())},
    )


def test_the_locustfile_loads_in_locust_with_one_open_loop_user_per_kind_and_a_shape() -> None:
    # A subprocess: importing locust monkey-patches the interpreter (gevent) for good.
    code = (
        "import json, loadtests.locustfile as m\n"
        "print(json.dumps({'users': [(c.__name__, c.kind, c.fixed_count) for c in m.USER_CLASSES],"
        " 'shape': m.ProfileShape.__mro__[1].__name__}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["users"] == [
        ["UploadUser", "upload", 1],
        ["UrlUser", "url", 1],
        ["JobUser", "job", 1],
    ]
    assert loaded["shape"] == "LoadTestShape"


def test_a_profile_gives_each_stage_rate_then_zero_while_draining_then_ends() -> None:
    p = Profile(name="t", stages=(Stage(10, 0.5), Stage(5, 2.0)), mix={}, slos={}, drain_s=3)
    assert [p.rate_at(t) for t in (0, 9.9, 10, 14.9, 15, 17.9, 18)] == [
        0.5,
        0.5,
        2.0,
        2.0,
        0.0,
        0.0,
        None,
    ]
    assert p.duration_s == 18
    assert [s.rate_rps for s in p.scaled(1.0).stages] == [0.25, 1.0]


def test_a_profile_survives_the_json_trip_to_the_locust_process() -> None:
    p = get_profile("short")
    assert Profile.from_dict(json.loads(p.to_json())) == p


def test_shed_429s_are_counted_apart_and_not_as_errors() -> None:
    summary = check(read_stats(STATS), _profile())
    assert summary["shed_429"] == 4
    assert summary["requests"] == 38  # every row but the shed one
    assert summary["failures"] == 0
    assert summary["passed"]


def test_a_percentile_over_its_limit_fails_the_run_and_names_the_check() -> None:
    summary = check(read_stats(STATS), _profile(upload=Slo(p50_ms=8000, p99_ms=12000)))
    failed = [(c["name"], c["metric"], c["value"]) for c in summary["checks"] if not c["ok"]]
    assert failed == [(UPLOAD, "p50_ms", 8100.0)]
    assert not summary["passed"]


def test_failures_above_the_allowed_error_rate_fail_the_run(tmp_path: Path) -> None:
    text = STATS.read_text().replace("POST,POST /v1/jobs,2,0,", "POST,POST /v1/jobs,2,1,")
    (tmp_path / "s.csv").write_text(text)
    summary = check(read_stats(tmp_path / "s.csv"), _profile())
    assert summary["error_rate"] == pytest.approx(1 / 38, abs=1e-5)
    assert not summary["passed"]


def test_a_request_kind_with_an_slo_but_no_answers_fails_rather_than_passes() -> None:
    p = _profile()
    p = Profile(**{**p.__dict__, "slos": {JOB_DONE: Slo(p95_ms=1e9), "never sent": Slo(p50_ms=1)}})
    summary = check(read_stats(STATS), p)
    assert [c["name"] for c in summary["checks"] if not c["ok"]] == ["never sent"]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_smoke_profile_passes_against_a_real_gateway_with_every_request_kind(
    tmp_path: Path,
) -> None:
    media = REPO.parent / "shared" / "media" / "mdn-ie__flower.mp4"
    if not media.is_file():
        pytest.skip("../shared/media is not present")
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--profile", "smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert summary["failures"] == 0
    for name in (UPLOAD, URL, JOB_DONE):  # the URL kinds prove the loopback fetch is allowed
        assert summary["rows"][name]["requests"] > 0, name
    assert (tmp_path / "locust_report.html").stat().st_size > 0


def test_requests_that_never_answered_count_as_failures_of_their_request_name(
    tmp_path: Path,
) -> None:
    # Locust writes one row per (method, name): the unfinished uploads of a run come as a
    # second row of the same name, which must add to it, not replace it.
    extra = "POST,POST /v1/classify (upload),3,3,30000,30000,29000,31000,0,0.05,0.05," + ",".join(
        ["31000"] * 11
    )
    (tmp_path / "s.csv").write_text(STATS.read_text() + extra + "\n")
    summary = check(read_stats(tmp_path / "s.csv"), _profile())
    assert summary["rows"][UPLOAD]["requests"] == 9
    assert summary["failures"] == 3
    assert not summary["passed"]


class _SlowHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(4.0)  # slower than the arrivals: a closed loop would send 1 per 4 s
        with contextlib.suppress(OSError):  # the client may be gone by then
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
@pytest.mark.e2e
def test_arrivals_keep_coming_while_the_server_is_slow_and_the_unanswered_fail_the_run(
    tmp_path: Path,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = Profile(name="t", stages=(Stage(6, 3.0),), mix={"upload": 1.0}, slos={}, drain_s=1.0)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not really a video")
    env = os.environ | {
        "AVSERVE_LOADTEST_PROFILE": profile.to_json(),
        "AVSERVE_LOADTEST_MEDIA_DIR": str(tmp_path),
        "AVSERVE_LOADTEST_MEDIA": "v.mp4",
        "AVSERVE_LOADTEST_ARRIVALS_FILE": str(tmp_path / "arrivals.json"),
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
             "--only-summary", "--exit-code-on-error", "0", "--csv", str(tmp_path / "run"),
             "--host", f"http://127.0.0.1:{server.server_address[1]}"],
            cwd=REPO, env=env, capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    sent = json.loads((tmp_path / "arrivals.json").read_text())["upload"]
    row = read_stats(tmp_path / "run_stats.csv")[UPLOAD]
    assert sent >= 8  # ~18 expected at 3/s for 6 s; a closed loop would manage 2
    assert row["requests"] == sent  # every arrival is in the CSV: answered or failed
    assert row["failures"] >= 1  # the ones still waiting at the end count against the run
    assert not check(read_stats(tmp_path / "run_stats.csv"), profile)["passed"]


def _make_dry_run(target: str) -> list[str]:
    outer = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_make_loadtest_runs_the_locust_runner_from_the_dev_environment() -> None:
    lines = _make_dry_run("loadtest")
    assert lines[-1] == ".venv/bin/python -m loadtests.run"


def test_make_bench_peers_keeps_litserve_and_pytorchvideo_out_of_the_service_venv() -> None:
    lines = _make_dry_run("bench-peers")
    installs = [line for line in lines if "pip install" in line]
    assert installs and all(line.startswith(".venv-bench/bin/python") for line in installs)
    assert any('"torch==2.14.1" "torchvision==0.29.1"' in line for line in installs)
    runs = [line for line in lines if " -m benchmarks." in line]
    assert [r.split(" -m ")[1].split()[0] for r in runs] == [
        "benchmarks.bench_peers",
        "benchmarks.bench_peers",
        "benchmarks.bench_pytorchvideo",
    ]
