"""Memory stays bounded by the windows requested, not by the length of the video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media.synth import AudioSpec, write_video

pytestmark = pytest.mark.slow

MEASURE = r"""
import json, resource, sys
from pathlib import Path
from service.media import (ClipSpec, ClipWindow, MediaPolicy, SnippetSpec, center_box, probe,
                           read_clips, read_snippets)

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def run(path, windows):
    info = probe(path, policy)
    snippets = read_snippets(path, info, SnippetSpec(), policy)
    starts = [info.duration_s * k / windows for k in range(windows)]
    clips = read_clips(path, info, [ClipWindow(s, center_box(info)) for s in starts],
                       ClipSpec(), policy)
    return info, snippets, clips

policy = MediaPolicy(max_decoded_frames=100_000)
short, long = Path(sys.argv[1]), Path(sys.argv[2])
run(short, 4)  # warm up: libraries, decoder and converter buffers, output arrays
baseline = peak_mib()
info, snippets, clips = run(long, 4)
print(json.dumps({"baseline": baseline, "peak": peak_mib(), "duration": info.duration_s,
                  "decoded": snippets.decoded_frames + clips.decoded_frames}))
"""


def test_long_video_decodes_in_bounded_memory(tmp_path: Path) -> None:
    audio = AudioSpec(rate=8000, layout="mono", codec="pcm_s16le", freq=300.0)
    frames, width, height = 30 * 600, 128, 96  # 10 minutes at 30 fps
    common = {"fps": 30, "width": width, "height": height, "audio": audio, "options": {"g": "60"}}
    short = write_video(tmp_path / "short.mkv", frames=300, **common)  # type: ignore[arg-type]
    long = write_video(tmp_path / "long.mkv", frames=frames, **common)  # type: ignore[arg-type]
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(short), str(long)],
        capture_output=True, text=True, check=True, cwd=repo, timeout=300,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["duration"] == pytest.approx(600.0, abs=0.1)
    whole_video_mib = frames * width * height * 3 / 2**20  # ~660 MiB as RGB
    growth = report["peak"] - report["baseline"]
    assert growth < 64, report  # the long video adds almost nothing over a 10 s one
    assert growth < whole_video_mib / 10
    assert report["decoded"] < frames / 4  # and it was never fully decoded
