"""Long 1080p videos through the gateway: peak memory and decode time against duration.

Videos of 1, 2, 5 and 10 minutes at 1920x1080 (H.264 ``ultrafast``, x264's default keyframe
interval of 250 frames, as a new user's encoder leaves it; AAC mono tone) are generated once
into ``bench-results/cache/long/`` (not in git). Only the first minute is encoded; the longer
files repeat its packets with shifted timestamps (a stream copy), so generation stays cheap
on a 2-core machine while every file has the real GOP structure and bitrate of its duration.

Each file is uploaded to a real ``avserve serve`` (gateway + decode worker processes, default
policy) and classified; while it runs, the resident set size of the gateway and of each decode
worker is sampled every 50 ms (psutil). Reported per duration: peak RSS of the gateway, of the
workers (sum) and of both together at one instant, the server's own probe / glance decode /
window decode timings, and the decode time relative to the 1-minute file.

Goals (issue 19): peak RSS (gateway + decode workers) <= 1.5 GB; glance + windows decode time
grows less than linearly with duration (10 min costs < 10x 1 min).

Run: ``python -m benchmarks.bench_long_video [--minutes 1,2,5,10]``; writes
bench-results/long_video.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "long_video.json"
CACHE = REPO / "bench-results" / "cache" / "long"
MINUTES = (1, 2, 5, 10)
WIDTH, HEIGHT, FPS = 1920, 1080, 25
KEYINT = 250  # x264's default
AUDIO_RATE = 44_100
RSS_GOAL = 1.5e9
SAMPLE_S = 0.05
MAX_WALL_S = 600


# -- generation ------------------------------------------------------------------------------
def _encode_base(path: Path, seconds: int) -> None:
    """``seconds`` of 1080p: a drifting luma gradient and a moving bright block, a tone."""
    import av
    import numpy as np

    partial = path.with_name(f".{os.getpid()}.{path.name}")
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    base_y = ((xs // 8 + ys // 8) % 200 + 16).astype(np.uint8)
    chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)  # U and V planes, stacked
    with av.open(str(partial), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "30"}
        video.codec_context.gop_size = KEYINT
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(seconds * FPS):
            y = np.roll(base_y, shift=2 * i, axis=1)
            x0 = (i * 12) % (WIDTH - 240)
            y[400:640, x0 : x0 + 240] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        block = audio.codec_context.frame_size or 1024
        total = seconds * AUDIO_RATE
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / AUDIO_RATE
            tone = 0.2 * np.sin(2 * np.pi * (330 + 110 * np.sin(t / 3)) * t)
            af = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], "fltp", "mono")
            af.sample_rate, af.pts, af.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
            out.mux(audio.encode(af))
        out.mux(audio.encode())
    os.replace(partial, path)


def _repeat(base: Path, path: Path, times: int) -> None:
    """``times`` copies of ``base`` back to back, by stream copy with shifted timestamps."""
    import av

    partial = path.with_name(f".{os.getpid()}.{path.name}")
    with av.open(str(base)) as src:
        streams = list(src.streams)
        # (packet, pts, dts) with the timestamps as ints: packets without one are dropped.
        packets = [
            (p, p.pts, p.pts if p.dts is None else p.dts)
            for p in src.demux(*streams)
            if p.size and p.pts is not None
        ]
        span = {}
        for s in streams:
            own = [(p, pts) for p, pts, _ in packets if p.stream.index == s.index]
            span[s.index] = max(pts + (p.duration or 0) for p, pts in own) - min(
                pts for _, pts in own
            )
        with av.open(str(partial), "w", format="mp4") as out:
            outs = {s.index: out.add_stream_from_template(s) for s in streams}
            for n in range(times):
                for p, pts, dts in packets:
                    shift = n * span[p.stream.index]
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = pts + shift, dts + shift
                    q.duration, q.time_base, q.is_keyframe = p.duration, p.time_base, p.is_keyframe
                    q.stream = outs[p.stream.index]
                    out.mux(q)
    os.replace(partial, path)


def ensure_videos(minutes: list[int]) -> dict[int, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    base = CACHE / f"base_1080p_{FPS}fps_gop{KEYINT}_60s.mp4"
    if not base.is_file():
        t0 = time.perf_counter()
        _encode_base(base, 60)
        print(f"encoded {base.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    files = {}
    for m in minutes:
        path = CACHE / f"long_1080p_{FPS}fps_gop{KEYINT}_{m}min.mp4"
        if m == 1:
            path = base
        elif not path.is_file():
            _repeat(base, path, m)
        files[m] = path
    return files


# -- measurement -----------------------------------------------------------------------------
class RssSampler:
    """Peak RSS of a process and of its child processes, sampled on a thread."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self.peak_gateway = self.peak_workers = self.peak_total = 0
        self.workers_seen: set[int] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                gateway = self._proc.memory_info().rss
                workers = 0
                for child in self._proc.children(recursive=True):
                    try:
                        workers += child.memory_info().rss
                        self.workers_seen.add(child.pid)
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self.peak_gateway = max(self.peak_gateway, gateway)
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_total = max(self.peak_total, gateway + workers)
            self._stop.wait(SAMPLE_S)


def classify(url: str, path: Path, pid: int) -> dict[str, Any]:
    import httpx

    with RssSampler(pid) as rss, open(path, "rb") as f:
        t0 = time.perf_counter()
        r = httpx.post(
            f"{url}/v1/classify",
            files={"file": (path.name, f, "video/mp4")},
            headers={"X-Request-Timeout": "600"},
            timeout=900,
        )
        wall = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"{path.name}: HTTP {r.status_code}: {r.text[:500]}")
    body = r.json()
    t = body["timings_ms"]
    decode = t.get("glance_decode", 0.0) + t.get("clip_decode", 0.0)
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "duration_s": body["video"]["duration_s"],
        "policy": body["policy"],
        "k": body["k"],
        "wall_s": round(wall, 3),
        "timings_ms": t,
        "probe_ms": t.get("probe", 0.0),
        "decode_ms": round(decode, 1),
        "peak_rss_gateway_mb": round(rss.peak_gateway / 1e6, 1),
        "peak_rss_workers_mb": round(rss.peak_workers / 1e6, 1),
        "peak_rss_total_mb": round(rss.peak_total / 1e6, 1),
        "worker_processes_seen": len(rss.workers_seen),
    }


def start_server(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    from benchmarks.bench_serving_e2e import _free_port

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "AVSERVE_MODEL_DIR": str(model_dir),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_LOG_LEVEL": "warning",
        # Per-job wall cap raised from 60 s: this shared 2-core machine runs other jobs too.
        "AVSERVE_MEDIA__MAX_WALL_S": str(MAX_WALL_S),
    }
    cmd = [sys.executable, "-c", "from service.cli import main; main()", "serve"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()[-3000:]}")


def main() -> None:
    from benchmarks.bench_serving_e2e import _stop
    from benchmarks.common import machine

    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", default=",".join(map(str, MINUTES)))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    minutes = [int(m) for m in args.minutes.split(",")]
    info = machine()
    t0 = time.perf_counter()
    files = ensure_videos(minutes)
    generate_s = time.perf_counter() - t0
    import models

    model_dir = Path(models.__file__).resolve().parent / "zoo" / "avsynth"
    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(model_dir, Path(tmp) / "server.log")
        try:
            for _ in range(args.rounds):  # rounds: load from other jobs hits each size alike
                for m in minutes:
                    r = classify(url, files[m], proc.pid)
                    best = rows.get(m)
                    if best is None or r["decode_ms"] < best["decode_ms"]:
                        peak = max(r["peak_rss_total_mb"], best["peak_rss_total_mb"] if best else 0)
                        rows[m] = r | {"peak_rss_total_mb_all_rounds": peak}
                    else:
                        best["peak_rss_total_mb_all_rounds"] = max(
                            best["peak_rss_total_mb_all_rounds"], r["peak_rss_total_mb"]
                        )
                    print(
                        f"{m:3d} min: decode {r['decode_ms'] / 1000:6.2f} s, wall "
                        f"{r['wall_s']:6.1f} s, peak RSS {r['peak_rss_total_mb']:.0f} MB",
                        flush=True,
                    )
        finally:
            _stop(proc)
    first = rows[minutes[0]]
    table = []
    for m in minutes:
        r = rows[m]
        r["minutes"] = m
        r["decode_vs_first"] = round(r["decode_ms"] / first["decode_ms"], 3)
        r["duration_vs_first"] = round(r["duration_s"] / first["duration_s"], 3)
        table.append(r)
    peak_all = max(r["peak_rss_total_mb_all_rounds"] for r in table)
    last = table[-1]
    summary = {
        "peak_rss_total_mb": peak_all,
        "rss_goal_mb": RSS_GOAL / 1e6,
        "rss_goal_met": peak_all * 1e6 <= RSS_GOAL,
        "decode_growth": last["decode_vs_first"],
        "duration_growth": last["duration_vs_first"],
        "sublinear": last["decode_vs_first"] < last["duration_vs_first"],
    }
    print(
        f"\n{'min':>4s} {'MB':>6s} {'probe s':>8s} {'decode s':>9s} {'x 1st':>6s} "
        f"{'gw MB':>7s} {'wk MB':>7s} {'tot MB':>7s}"
    )
    for r in table:
        print(
            f"{r['minutes']:4d} {r['file_mb']:6.0f} {r['probe_ms'] / 1000:8.2f} "
            f"{r['decode_ms'] / 1000:9.2f} {r['decode_vs_first']:6.2f} "
            f"{r['peak_rss_gateway_mb']:7.0f} {r['peak_rss_workers_mb']:7.0f} "
            f"{r['peak_rss_total_mb_all_rounds']:7.0f}"
        )
    print(f"summary: {summary}")
    info["loadavg_at_end"] = os.getloadavg()
    result = {
        "benchmark": "long_video",
        "what": f"{WIDTH}x{HEIGHT} {FPS} fps H.264 (ultrafast, crf 30, keyint {KEYINT}) + AAC, "
        "uploaded to `avserve serve` (bundled model, default policy, 2 decode workers); best "
        f"decode of {args.rounds} rounds, peak RSS over all rounds; machine shared with other "
        "jobs (see load averages)",
        "machine": info,
        "generate_s": round(generate_s, 1),
        "max_wall_s_setting": MAX_WALL_S,
        "rows": table,
        "summary": summary,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
