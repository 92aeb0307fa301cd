"""Benchmark of media ingestion: full decode vs glance sampling vs glance + 3 clip windows.

On a generated 60 s 1280x720 30 fps H.264 video (keyframe every 2 s, the usual web/streaming
GOP; B-frames; AAC stereo) it times, each scenario in a fresh process (so peak RSS is its own):

- full decode: every frame decoded (no colour conversion), same decoder threads as the service;
- full decode + RGB: every frame also converted to RGB (what ``read_video``-style loaders do);
- glance: probe + 16 snippets (160 px, 1 s audio each), default keyframe tolerance;
- glance (exact): the same with the exact nearest frame for every snippet;
- glance + 3 windows: the above plus 3 AVSlowFast clips (32 frames at stride 2, 224 crop,
  16 kHz audio) centred on snippets 3, 8 and 13, where a glance policy would put them (with
  the policy's default ``window_snap``).

The same is repeated on a video with x264's default 250-frame GOP (scene cuts may add
keyframes), where every read costs more. Goals: glance + 3 windows <= 25 % of a full decode
(the stricter, decoder-only baseline) with the 2 s GOP, <= 50 % with the 250-frame GOP; both
wall and CPU time (all threads) are recorded, CPU being the steadier on a shared machine.

``--baseline-tree DIR`` (a checkout of an older revision, e.g. ``git worktree add``) measures
the same scenarios with that tree's code in the same run, interleaved with this tree's runs
(repeat by repeat), so before/after ratios share the machine's load. Each video's probe
``decode_plan`` (keyframe index, GOPs, seeks, frames estimate, strategy) is recorded too.

Run: ``python -m benchmarks.bench_media [--baseline-tree DIR] [--out FILE]`` (or ``make
bench``). Writes bench-results/media.json with the machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
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
VIDEOS = (("720p60s_gop60", 60, 0.25), ("720p60s_gop250", 250, 0.50))  # label, GOP, goal


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


def _own_peak_rss_mib() -> float | None:
    """This process's own peak RSS (VmHWM). ``ru_maxrss`` survives exec on Linux, so a child
    started by a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


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
    from service.policies import PolicyConfig  # imported before the clock starts

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
            snap = PolicyConfig().window_snap * spec.duration_s  # as the glance policy asks
            windows = [
                ClipWindow(centres[k] - spec.duration_s / 2, box, snap) for k in WINDOW_SNIPPETS
            ]
            clips = read_clips(path, info, windows, spec, policy)
            decoded += clips.decoded_frames
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak = _own_peak_rss_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "cpu_seconds": cpu, "decoded_frames": decoded, "peak_rss_mib": peak}


def run_once(name: str, path: Path, tree: Path) -> dict[str, Any]:
    """One scenario in a fresh interpreter, with the code of ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_media", "--scenario", name, str(path)],
        capture_output=True, text=True, check=True, cwd=tree, env=env,
    )  # fmt: skip
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "decoded_frames": runs[0]["decoded_frames"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "runs_seconds": [round(r["seconds"], 3) for r in runs],
        "runs_cpu_seconds": [round(r["cpu_seconds"], 3) for r in runs],
    }


def measure(path: Path, trees: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Every scenario with every tree, interleaved repeat by repeat (shared load drifts)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        t: {n: [] for n in SCENARIOS} for t in trees
    }
    for _ in range(REPEATS):
        for name in SCENARIOS:
            for tree, root in trees.items():
                runs[tree][name].append(run_once(name, path, root))
    out: dict[str, dict[str, Any]] = {}
    for tree in trees:
        rows = {name: summarise(runs[tree][name]) for name in SCENARIOS}
        full, full_cpu = rows["full_decode"]["seconds"], rows["full_decode"]["cpu_seconds"]
        for row in rows.values():
            row["fraction_of_full"] = row["seconds"] / full
            row["cpu_fraction_of_full"] = row["cpu_seconds"] / full_cpu
        out[tree] = rows
    return out


def load() -> dict[str, Any]:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return {"loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()], "uptime": uptime.strip()}


def decode_plan(path: Path) -> dict[str, Any] | None:
    from service.media import MediaPolicy, probe

    plan: dict[str, Any] | None = probe(path, MediaPolicy()).decode_plan
    return plan


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="bench_media")
    parser.add_argument("--baseline-tree", type=Path, help="older checkout to compare with")
    parser.add_argument("--baseline-label", default="", help="what the baseline tree is")
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args(argv)
    trees = {"current": REPO}
    if opts.baseline_tree is not None:
        trees["baseline"] = opts.baseline_tree.resolve()
    console = Console(width=120)
    result: dict[str, Any] = {
        "machine": machine(),
        "shared_machine_note": "other jobs shared the cores; see load before/after",
        "load_before": load(),
        "repeats": REPEATS,
        "trees": {"current": "this tree"},
        "videos": {},
    }
    if "baseline" in trees:
        result["trees"]["baseline"] = opts.baseline_label or "an older checkout"
    for label, gop, goal in VIDEOS:
        console.print(f"[dim]preparing {label}...[/dim]")
        path = make_video(CACHE / f"bench_{label}.mp4", gop)
        measured = measure(path, trees)
        rows = measured["current"]
        entry: dict[str, Any] = {"gop_frames": gop, "goal_fraction": goal, "scenarios": rows}
        entry["decode_plan"] = decode_plan(path)
        if "baseline" in measured:
            entry["baseline_scenarios"] = measured["baseline"]
        row = rows["glance_3_windows"]
        entry["goal_met"] = {
            "wall": row["fraction_of_full"] <= goal,
            "cpu": row["cpu_fraction_of_full"] <= goal,
        }
        result["videos"][label] = entry

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
        for tree, tree_rows in measured.items():
            g3 = tree_rows["glance_3_windows"]
            console.print(
                f"{tree}: glance + 3 windows = {100 * g3['fraction_of_full']:.1f} % (wall) / "
                f"{100 * g3['cpu_fraction_of_full']:.1f} % (CPU) of a full decode "
                f"(goal <= {100 * goal:.0f} %)"
            )
    result["load_after"] = load()
    result["machine"]["loadavg_at_end"] = result["load_after"]["loadavg_1_5_15"]
    console.print(f"machine: {result['machine']}; load {result['load_after']['uptime']}")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {opts.out}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--scenario":
        print(json.dumps(run_scenario(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
