"""Rows read by a format module -> a ``Source``: the label set, label indices, problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offline.data.sources.types import (
    BAD_ROW,
    MISSING_FILE,
    UNKNOWN_LABEL,
    Problem,
    Sample,
    Source,
    SourceSpec,
    sort_labels,
)


@dataclass(frozen=True)
class Row:
    """One parsed entry before label indexing (``names`` empty: unlabeled)."""

    path: Path
    names: tuple[str, ...]
    where: str
    start_s: float | None = None
    end_s: float | None = None
    split: str | None = None
    key: str = ""


def parse_window(start: str | float | None, end: str | float | None) -> tuple[float | None, ...]:
    """``(start_s, end_s)`` from optional cells; ValueError when they do not make a window."""
    s = None if start in (None, "") else float(start)
    e = None if end in (None, "") else float(end)
    if (s is not None and s < 0) or (s is not None and e is not None and e <= s):
        raise ValueError(f"window {start!r}..{end!r} is empty or negative")
    return s, e


def assemble(
    kind: str,
    location: Path,
    rows: Sequence[Row],
    spec: SourceSpec,
    problems: list[Problem],
    *,
    list_labels: bool = False,
    check_files: bool = True,
) -> Source:
    """Index labels (sorted, or ``spec.classes``), report unknown labels and missing files.

    ``list_labels``: the format wrote labels as a list (JSON), which marks a multi-label source
    even when every row happens to carry one label.
    """
    multi = spec.multi_label
    if multi is None:
        multi = list_labels or any(len(r.names) > 1 for r in rows)
    classes = (
        spec.classes if spec.classes is not None else sort_labels(n for r in rows for n in r.names)
    )
    index = {name: i for i, name in enumerate(classes)}
    samples: list[Sample] = []
    for r in rows:
        unknown = [n for n in r.names if n not in index]
        if unknown:
            problems.append(
                Problem(UNKNOWN_LABEL, r.where, f"label {unknown[0]!r} is not in the label set")
            )
            continue
        if len(r.names) > 1 and not multi:
            problems.append(Problem(BAD_ROW, r.where, "several labels in a single-label source"))
            continue
        if check_files and not r.path.is_file():
            problems.append(Problem(MISSING_FILE, r.where, f"no such file {r.path}"))
            continue
        samples.append(
            Sample(
                path=r.path,
                labels=tuple(dict.fromkeys(index[n] for n in r.names)),
                start_s=r.start_s,
                end_s=r.end_s,
                split=r.split,
                key=r.key or str(r.path),
            )
        )
    return Source(kind, location, tuple(classes), samples, multi_label=bool(multi) and bool(classes),
                  problems=problems)  # fmt: skip
