"""What dense-30 can see of a long video's event: clip starts, best fill and its buckets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offline.evaluation.coverage import (
    EventTiming,
    accuracy_by_bucket,
    best_dense_fill,
    bucket_shares,
    dense_starts,
    fill_bucket,
)
from service.media import ClipSpec, MediaInfo, VideoStreamInfo, dense_windows

ROOT = Path(__file__).resolve().parents[2]
CLIP_S = ClipSpec().duration_s  # 32 frames x 2 at 30 fps


def test_clip_starts_are_the_ones_the_dense_policy_decodes() -> None:
    video = VideoStreamInfo(0, "h264", 640, 360, 640, 360, 30.0, 0, 47.3, None)
    info = MediaInfo("mp4", 1, 47.3, False, video, None, 1)
    served = sorted({w.start_s for w in dense_windows(info, ClipSpec())})
    assert dense_starts(47.3, CLIP_S) == pytest.approx(served)


def test_an_event_after_the_last_clip_is_never_seen() -> None:
    # 60 s video: the last clip starts at 0.9 * (60 - L) and ends before 55 s.
    assert best_dense_fill(EventTiming(60.0, 56.0, 59.0), CLIP_S) == 0.0
    assert fill_bucket(0.0) == "none"


def test_an_event_inside_a_clip_fills_its_length_and_a_long_one_fills_the_clip() -> None:
    starts = dense_starts(40.0, CLIP_S)
    s = starts[3]
    short = best_dense_fill(EventTiming(40.0, s + 0.2, s + 1.2), CLIP_S)
    assert short == pytest.approx(1.0 / CLIP_S)
    assert best_dense_fill(EventTiming(40.0, s - 1.0, s + CLIP_S + 1.0), CLIP_S) == pytest.approx(1)


def test_an_event_between_two_clips_counts_its_best_overlap() -> None:
    starts = dense_starts(50.0, CLIP_S)
    gap_start = starts[4] + CLIP_S  # clips are ~4.8 s apart, so a gap of ~2.7 s follows
    fill = best_dense_fill(EventTiming(50.0, gap_start - 0.5, gap_start + 2.0), CLIP_S)
    assert fill == pytest.approx(0.5 / CLIP_S)
    assert fill_bucket(fill) == "< 0.3"


def test_buckets_split_at_their_edges_and_shares_add_up() -> None:
    assert [fill_bucket(f) for f in (0.0, 0.1, 0.3, 0.59, 0.6, 1.0)] == [
        "none", "< 0.3", "0.3 - 0.6", "0.3 - 0.6", ">= 0.6", ">= 0.6",
    ]  # fmt: skip
    shares = bucket_shares([0.0, 0.2, 0.7, 0.9])
    assert shares == {"none": 0.25, "< 0.3": 0.25, "0.3 - 0.6": 0.0, ">= 0.6": 0.5}


def test_outcomes_are_counted_in_their_videos_bucket() -> None:
    got = accuracy_by_bucket([0.0, 0.4, 0.4, 0.8], [False, True, False, True])
    assert got["0.3 - 0.6"] == {"n": 2, "correct": 1}
    assert got[">= 0.6"] == {"n": 1, "correct": 1}
    with pytest.raises(ValueError, match="3 fills for 2 outcomes"):
        accuracy_by_bucket([0.1, 0.2, 0.3], [True, False])


def test_the_committed_coverage_file_is_what_the_script_computes(tmp_path: Path) -> None:
    out = tmp_path / "dense_coverage.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dense_coverage.py"), "--out", str(out)],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    committed = json.loads((ROOT / "docs" / "results" / "dense_coverage.json").read_text())
    assert json.loads(out.read_text()) == committed
