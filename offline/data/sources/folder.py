"""A folder per class (``root/<label>/**/*.mp4``), as torchvision's folder datasets.

Classes are the sub-folder names, sorted. Every file with a video suffix the media layer knows
(``service.media.files.VIDEO_SUFFIXES``) below a class folder is a sample of that class; other
files are reported as warnings. A class folder without videos is an error (``empty_class``),
as torchvision refuses one. A folder with no sub-folders at all is an *unlabeled* source (the
glance can distil from it). Hidden entries (``.cache-*`` written by training) are skipped.
"""

from __future__ import annotations

from pathlib import Path

from offline.data.sources.assemble import Row, assemble
from offline.data.sources.types import (
    EMPTY_CLASS,
    NOT_VIDEO,
    UNLABELED_FILE,
    Problem,
    Source,
    SourceSpec,
)
from service.media.files import VIDEO_SUFFIXES


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _files(folder: Path, root: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p, root))


def open_folder(spec: SourceSpec) -> Source:
    root = spec.location
    problems: list[Problem] = []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows: list[Row] = []
    if not class_dirs:  # unlabeled: every video of the folder
        for f in _files(root, root):
            if f.suffix.lower() in VIDEO_SUFFIXES:
                rows.append(Row(f, (), str(f), key=f.relative_to(root).as_posix()))
            else:
                problems.append(Problem(NOT_VIDEO, str(f), "not a video suffix", "warning"))
        return assemble("folder", root, rows, spec, problems)
    for f in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        if f.suffix.lower() in VIDEO_SUFFIXES:
            problems.append(
                Problem(UNLABELED_FILE, str(f), "video outside every class folder", "warning")
            )
    for d in class_dirs:
        videos = 0
        for f in _files(d, root):
            if f.suffix.lower() not in VIDEO_SUFFIXES:
                problems.append(Problem(NOT_VIDEO, str(f), "not a video suffix", "warning"))
                continue
            videos += 1
            rows.append(Row(f, (d.name,), str(f), key=f.relative_to(root).as_posix()))
        if not videos:
            problems.append(Problem(EMPTY_CLASS, str(d), f"class folder {d.name!r} has no videos"))
    return assemble("folder", root, rows, spec, problems, check_files=False)
