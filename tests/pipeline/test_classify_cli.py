"""``avserve classify``: files and folders, one JSON object per file, typed errors per file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.media.files import expand_paths


def test_folders_are_searched_for_videos_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("")
    (tmp_path / "y.MKV").write_bytes(b"")
    assert expand_paths([tmp_path]) == [tmp_path / "a" / "x.mp4", tmp_path / "y.MKV"]
    assert expand_paths([tmp_path / "a" / "notes.txt"]) == [tmp_path / "a" / "notes.txt"]


@pytest.mark.e2e
def test_json_lines_carry_a_result_or_an_error_per_file(
    tmp_path: Path, media_dir: Path, tiny_package_dir: Path
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("mdn-ie__flower.mp4", "mdn-sa__guitar.ogg", "decord__corrupted.mp4"):
        shutil.copy(media_dir / name, folder / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "classify",
            str(folder),
            "--model-dir",
            str(tiny_package_dir),
            "--policy",
            "heuristic",
            "--k",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # one file failed: non-zero exit status, and stderr says how many
    assert proc.returncode == 1, proc.stderr
    assert "1 of 3 files failed" in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # input order (the folder's files sorted), whatever order they finished in
    assert [Path(d["file"]).name for d in lines] == sorted(
        ["mdn-ie__flower.mp4", "mdn-sa__guitar.ogg", "decord__corrupted.mp4"]
    )
    by_file = {Path(d["file"]).name: d for d in lines}
    assert by_file["mdn-sa__guitar.ogg"]["error"]["code"] == "no_video_stream"
    flower = by_file["mdn-ie__flower.mp4"]
    assert flower["policy"] == "heuristic" and flower["k"] == 2
    assert flower["heads"]["kinetics"][0]["label"]
    # The corrupt tail still covers enough of the video to classify, with a warning.
    corrupted = by_file["decord__corrupted.mp4"]
    assert "heads" in corrupted
    assert "decode_errors" in [w["code"] for w in corrupted["warnings"]]
