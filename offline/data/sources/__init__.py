"""Datasets from the user's files: one ``open_source`` for every format.

``open_source(path)`` picks the format from what it finds: a generated AVSynth set (a folder
with ``manifest.jsonl``), a folder per class (``videos/<label>/*.mp4``), a CSV / TSV / text list
(including the Kinetics CSV) or a JSON-lines list. It returns a ``Source``: typed samples, the
label set, and every problem met (nothing is dropped without one). See docs/own-videos.md.
"""

from __future__ import annotations

from pathlib import Path

from offline.data.sources.types import (
    BAD_SOURCE,
    DataError,
    Problem,
    Sample,
    Source,
    SourceSpec,
    hash_split,
)

FORMATS = ("auto", "avsynth", "folder", "csv", "jsonl")


def detect_format(location: Path) -> str:
    if location.is_dir():
        return "avsynth" if (location / "manifest.jsonl").is_file() else "folder"
    if location.is_file():
        from offline.data.sources.listfile import check_list_suffix

        return check_list_suffix(location)
    raise DataError(f"no such dataset folder or list: {location}", code=BAD_SOURCE)


def open_source(spec: SourceSpec | str | Path) -> Source:
    """Read a dataset source; see ``SourceSpec`` for the options."""
    if not isinstance(spec, SourceSpec):
        spec = SourceSpec(Path(spec))
    fmt = detect_format(spec.location) if spec.format == "auto" else spec.format
    if fmt not in FORMATS[1:]:
        raise DataError(f"unknown dataset format {fmt!r} (one of {FORMATS})", code=BAD_SOURCE)
    if fmt in ("avsynth", "folder") and not spec.location.is_dir():
        raise DataError(f"{spec.location} is not a folder", code=BAD_SOURCE)
    if fmt in ("csv", "jsonl") and not spec.location.is_file():
        raise DataError(f"no such list file: {spec.location}", code=BAD_SOURCE)
    if spec.videos_dir is not None and not spec.videos_dir.is_dir():
        raise DataError(f"no such videos folder: {spec.videos_dir}", code=BAD_SOURCE)
    if fmt == "avsynth":
        from offline.data.sources.avsynth import open_avsynth

        return open_avsynth(spec)
    if fmt == "folder":
        from offline.data.sources.folder import open_folder

        return open_folder(spec)
    from offline.data.sources.listfile import open_csv, open_jsonl

    return open_csv(spec) if fmt == "csv" else open_jsonl(spec)


__all__ = [
    "FORMATS",
    "DataError",
    "Problem",
    "Sample",
    "Source",
    "SourceSpec",
    "detect_format",
    "hash_split",
    "open_source",
]
