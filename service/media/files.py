"""Which local files count as videos when a folder is given (CLI inputs, unlabeled training sets)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".ts",
    ".mts",
    ".flv",
    ".ogv",
    ".ogg",
    ".ivf",
    ".h264",
    ".264",
    ".h265",
    ".265",
    ".hevc",
}


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders recursively, keeping files with a video suffix, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES
                )
            )
        else:
            out.append(p)
    return out
