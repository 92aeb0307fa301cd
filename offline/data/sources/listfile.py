"""Video lists: CSV / TSV / space-separated text and JSON lines.

Accepted layouts (paths relative to ``--videos-dir``, by default the list's own folder, like
PySlowFast's ``PATH_PREFIX``):

* **With a header** (any order, case-insensitive): ``path`` (or ``file``, ``video``),
  ``label`` (or ``labels``, ``class``), optional ``start_s`` / ``end_s`` (or ``start``, ``end``,
  ``time_start``, ``time_end``) and ``split`` (or ``subset``). Several labels in one cell are
  separated by ``|`` (a multi-label source).
* **Kinetics CSV** (``label,youtube_id,time_start,time_end,split``): no path column; each row is
  resolved in the videos folder (searched recursively) by the names the Kinetics downloaders
  write: ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (a trimmed clip, used whole) or
  ``<youtube_id>.<ext>`` (the full video, cut to ``time_start..time_end``).
* **No header** (PySlowFast / PyTorchVideo lists): ``path label [start_s end_s]`` per line,
  separated by spaces, tabs or commas.
* **JSON lines**: one object per line with ``path`` (or ``file``), ``label`` / ``labels`` (a
  string or a list of strings; a list makes the source multi-label), and the optional
  ``start_s``, ``end_s``, ``split``.

Rows without a label column at all are unlabeled (for the glance).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from offline.data.sources.assemble import Row, assemble, parse_window
from offline.data.sources.types import (
    BAD_ROW,
    BAD_SOURCE,
    MISSING_FILE,
    DataError,
    Problem,
    Source,
    SourceSpec,
    normalise_split,
)
from service.media.files import VIDEO_SUFFIXES, expand_paths

_ALIASES = {
    "path": ("path", "file", "filename", "video", "video_path"),
    "label": ("label", "labels", "class", "class_name"),
    "start": ("start_s", "start", "time_start", "start_sec"),
    "end": ("end_s", "end", "time_end", "end_sec"),
    "split": ("split", "subset"),
    "youtube_id": ("youtube_id", "youtube id", "ytid"),
}


def _columns(header: list[str]) -> dict[str, int] | None:
    cells = [c.strip().lower() for c in header]
    found = {
        key: next(cells.index(a) for a in names if a in cells)
        for key, names in _ALIASES.items()
        if any(a in cells for a in names)
    }
    return found if ("path" in found or "youtube_id" in found) else None


def _read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """Non-empty rows with their 1-based line numbers; the delimiter is sniffed."""
    text = path.read_text(encoding="utf-8-sig")
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        return [], []
    first = lines[0][1]
    delim = "\t" if path.suffix.lower() == ".tsv" or "\t" in first else "," if "," in first else " "
    rows, numbers = [], []
    for n, ln in lines:
        cells = next(csv.reader(io.StringIO(ln), delimiter=delim, skipinitialspace=True))
        rows.append([c.strip() for c in cells if delim != " " or c.strip()])
        numbers.append(n)
    return rows, numbers


def _labels(cell: str, sep: str) -> tuple[str, ...]:
    parts = cell.split(sep) if sep else [cell]
    return tuple(p.strip() for p in parts if p.strip())


class _Kinetics:
    """Downloaded Kinetics files of a folder, by file stem (searched once, recursively)."""

    def __init__(self, root: Path) -> None:
        self.by_stem: dict[str, Path] = {}
        for p in expand_paths([root]) if root.is_dir() else []:
            self.by_stem.setdefault(p.stem, p)

    def resolve(self, yid: str, start: float, end: float) -> tuple[Path, bool] | None:
        """(file, trimmed): the trimmed clip if downloaded, else the full video."""
        trimmed = self.by_stem.get(f"{yid}_{int(start):06d}_{int(end):06d}")
        if trimmed is not None:
            return trimmed, True
        full = self.by_stem.get(yid)
        return (full, False) if full is not None else None


def open_csv(spec: SourceSpec) -> Source:
    path = spec.location
    root = spec.videos_dir or path.parent
    rows, numbers = _read_rows(path)
    problems: list[Problem] = []
    cols = _columns(rows[0]) if rows else None
    if cols is not None:
        rows, numbers = rows[1:], numbers[1:]
    else:  # header-less: path label [start end]
        cols = {"path": 0, "label": 1, "start": 2, "end": 3}
        if rows and len(rows[0]) < 2:
            cols = {"path": 0}
    kinetics = "path" not in cols
    index = _Kinetics(root) if kinetics else None
    need = max(i for k, i in cols.items() if k in ("path", "youtube_id", "label"))
    out: list[Row] = []
    for cells, n in zip(rows, numbers, strict=True):
        where = f"{path.name}:{n}"
        if len(cells) <= need:
            problems.append(Problem(BAD_ROW, where, f"{len(cells)} columns, need {need + 1}"))
            continue

        def cell(key: str, cells: list[str] = cells) -> str:
            i = cols.get(key)
            return cells[i] if i is not None and i < len(cells) else ""

        try:
            start, end = parse_window(cell("start"), cell("end"))
        except ValueError as err:
            problems.append(Problem(BAD_ROW, where, str(err)))
            continue
        names = _labels(cell("label"), spec.label_sep) if "label" in cols else ()
        if "label" in cols and not names:
            problems.append(Problem(BAD_ROW, where, "empty label"))
            continue
        split = normalise_split(cell("split"))
        if index is not None:
            yid = cell("youtube_id")
            if not yid or start is None or end is None:
                problems.append(
                    Problem(BAD_ROW, where, "Kinetics rows need youtube_id, time_start, time_end")
                )
                continue
            found = index.resolve(yid, start, end)
            if found is None:
                problems.append(
                    Problem(MISSING_FILE, where, f"no downloaded file for {yid} in {root}")
                )
                continue
            file, trimmed = found
            key = f"{yid}_{int(start):06d}_{int(end):06d}"
            if trimmed:  # the downloader already cut the clip: use all of it
                start, end = None, None
            out.append(Row(file, names, where, start, end, split=split, key=key))
            continue
        raw = cell("path")
        if not raw:
            problems.append(Problem(BAD_ROW, where, "empty path"))
            continue
        out.append(Row(root / raw, names, where, start, end, split=split, key=raw))
    source = assemble("kinetics" if kinetics else "csv", path, out, spec, problems)
    return source


def _get(obj: dict[str, Any], key: str) -> Any:
    return next((obj[a] for a in _ALIASES[key] if a in obj), None)


def open_jsonl(spec: SourceSpec) -> Source:
    path = spec.location
    root = spec.videos_dir or path.parent
    problems: list[Problem] = []
    out: list[Row] = []
    as_list = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{n}"
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            raw = _get(obj, "path")
            if not isinstance(raw, str) or not raw:
                raise ValueError("no path")
            label = _get(obj, "label")
            if isinstance(label, list):
                as_list = True
                if not all(isinstance(x, str) and x for x in label):
                    raise ValueError("labels must be non-empty strings")
                names = tuple(label)
            elif isinstance(label, str) and label:
                names = (label,)
            elif label is None:
                names = ()
            else:
                raise ValueError(f"label {label!r} is not a string or a list of strings")
            start, end = parse_window(_get(obj, "start"), _get(obj, "end"))
            split = _get(obj, "split")
        except ValueError as err:  # JSONDecodeError is a ValueError
            problems.append(Problem(BAD_ROW, where, str(err)))
            continue
        split_name = normalise_split(str(split)) if split is not None else None
        out.append(Row(root / raw, names, where, start, end, split=split_name, key=raw))
    return assemble("jsonl", path, out, spec, problems, list_labels=as_list)


def check_list_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in VIDEO_SUFFIXES:
        raise DataError(f"{path} is a video, not a dataset list or folder", code=BAD_SOURCE)
    raise DataError(
        f"{path}: unknown list format (use .csv, .tsv, .txt or .jsonl)", code=BAD_SOURCE
    )
