"""Benchmark of media ingestion: full decode vs glance sampling vs glance + 3 clip windows.

On a generated 60 s 1280x720 30 fps H.264 video (keyframe every 2 s, the usual web/streaming
GOP; B-frames; AAC stereo) it times, each scenario in a fresh process (so peak RSS is its own):

- full decode: every frame decoded (no colour conversion), same decoder threads as the service;
- full decode + RGB: every frame also converted to RGB (what ``read_video``-style loaders do);
- glance: probe + 16 snippets (160 px, 1 s audio each), default keyframe tolerance;
- glance (exact): the same with the exact nearest frame for every snippet;
- glance + 3 windows: the above plus 3 AVSlowFast clips (32 frames at stride 2, 224 crop,
  16 kHz audio) centred on snippets 3, 8 and 13, where a glance policy would put them.

The goal is glance + 3 windows <= 25 % of a full decode (the stricter, decoder-only baseline).
The same is repeated on a video with x264's default 250-frame GOP, where every window costs
more (reported, not a goal).

Run: ``python -m benchmarks.bench_media`` (or ``make bench``). Writes bench-results/media.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from benchmarks.common import machine

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "media.json"
CACHE = REPO / "bench-results" / "cache"
REPEATS = 3
SCENARIOS = ("full_decode", "full_decode_rgb", "glance", "glance_exact", "glance_3_windows")
WINDOW_SNIPPETS = (2, 7, 12)  # clips centred on three snippet instants, as a glance policy would


def make_video(path: Path, gop: int, seconds: int = 60, fps: int = 30) -> Path:
    """A moving, textured 720p picture (so the decoder has real work) with a tone track."""
    import av
    import numpy as np

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(45, 80, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((32, 32, 1), np.uint8))  # 1440x2560, blocky texture
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 1280, 720, "yuv420p"
        vs.codec_context.options = {
            "preset": "veryfast", "crf": "23", "g": str(gop), "keyint_min": str(gop),
            "bf": "3",
        }  # fmt: skip
        aus = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(seconds * fps):
            x, y = (7 * i) % 1280, (3 * i) % 720
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[y : y + 720, x : x + 1280]), format="rgb24"
            )
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        t = np.arange(seconds * 48000) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, tone.size, 1024):
            block = np.stack([tone[start : start + 1024]] * 2)
            af = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
            for packet in aus.encode(af):
                out.mux(packet)
        for packet in aus.encode():
            out.mux(packet)
    tmp.rename(path)
    return path


def run_scenario(name: str, path: Path) -> dict[str, Any]:
    """Runs in a child process: one scenario, its time, decoded frames and peak RSS."""
    import resource

    import av

    from service.media import (
        ClipSpec,
        ClipWindow,
        MediaPolicy,
        SnippetSpec,
        center_box,
        probe,
        read_clips,
        read_snippets,
        snippet_times,
    )

    policy = MediaPolicy()
    cpu_start = time.process_time()  # all threads of this process (decoder threads too)
    start = time.perf_counter()
    decoded = 0
    if name.startswith("full_decode"):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            stream.codec_context.thread_count = policy.decoder_threads
            for frame in container.decode(stream):
                decoded += 1
                if name == "full_decode_rgb":
                    frame.to_ndarray(format="rgb24")
    else:
        info = probe(path, policy)
        tolerance = 0.0 if name == "glance_exact" else SnippetSpec().frame_tolerance
        snippets = read_snippets(path, info, SnippetSpec(frame_tolerance=tolerance), policy)
        decoded += snippets.decoded_frames
        if name == "glance_3_windows":
            box, spec = center_box(info), ClipSpec()
            centres = snippet_times(info.duration_s, SnippetSpec().num_snippets)
            windows = [ClipWindow(centres[k] - spec.duration_s / 2, box) for k in WINDOW_SNIPPETS]
            clips = read_clips(path, info, windows, spec, policy)
            decoded += clips.decoded_frames
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "cpu_seconds": cpu, "decoded_frames": decoded, "peak_rss_mib": peak}


def measure(name: str, path: Path) -> dict[str, Any]:
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_media", "--scenario", name, str(path)],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "decoded_frames": runs[0]["decoded_frames"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    result: dict[str, Any] = {"machine": machine(), "repeats": REPEATS, "videos": {}}
    for label, gop in (("720p60s_gop60", 60), ("720p60s_gop250", 250)):
        console.print(f"[dim]preparing {label}...[/dim]")
        path = make_video(CACHE / f"bench_{label}.mp4", gop)
        rows = {name: measure(name, path) for name in SCENARIOS}
        full, full_cpu = rows["full_decode"]["seconds"], rows["full_decode"]["cpu_seconds"]
        for row in rows.values():
            row["fraction_of_full"] = row["seconds"] / full
            row["cpu_fraction_of_full"] = row["cpu_seconds"] / full_cpu
        result["videos"][label] = {"gop_frames": gop, "scenarios": rows}

        table = Table(title=f"media ingestion, 60 s 1280x720 30 fps H.264, GOP {gop} frames")
        columns = ("scenario", "wall (s)", "% of full", "CPU (s)", "CPU % of full")
        for col in (*columns, "frames decoded", "peak RSS"):
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for name, row in rows.items():
            table.add_row(
                name,
                f"{row['seconds']:.3f}",
                f"{100 * row['fraction_of_full']:.1f} %",
                f"{row['cpu_seconds']:.3f}",
                f"{100 * row['cpu_fraction_of_full']:.1f} %",
                str(row["decoded_frames"]),
                f"{row['peak_rss_mib']:.0f} MiB",
            )
        console.print(table)
    row = result["videos"]["720p60s_gop60"]["scenarios"]["glance_3_windows"]
    wall, cpu = row["fraction_of_full"], row["cpu_fraction_of_full"]
    result["goal_glance_3_windows_le_25pct"] = {"wall": wall <= 0.25, "cpu": cpu <= 0.25}
    console.print(
        f"glance + 3 windows = {100 * wall:.1f} % (wall) / {100 * cpu:.1f} % (CPU) of a full "
        "decode (goal <= 25 %)"
    )
    console.print(f"machine: {result['machine']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--scenario":
        print(json.dumps(run_scenario(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
