"""What every dataset source yields: typed samples, a label set, and the problems met on the way.

A source never drops a row silently: every row, file or folder it cannot use becomes a
``Problem`` (a stable ``code``, where, why). ``Source.require_clean`` turns errors into one
typed ``DataError`` before training starts; ``avserve data check`` prints them all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from service.errors import AvserveError

Severity = Literal["error", "warning"]
Subset = Literal["train", "val", "all"]

# Problem / error codes of the offline data side (never served over HTTP).
BAD_ROW = "bad_row"  # a list row that does not parse (columns, numbers, JSON)
MISSING_FILE = "missing_file"  # a listed or resolved file that is not there
UNKNOWN_LABEL = "unknown_label"  # a label outside a fixed label set (e.g. val vs. train)
EMPTY_CLASS = "empty_class"  # a class folder without a single video file
NO_SAMPLES = "no_samples"  # nothing usable at all
BAD_SOURCE = "bad_source"  # the source itself cannot be read (format, missing list)
NOT_VIDEO = "not_video"  # a file skipped because its suffix is not a video (warning)
UNLABELED_FILE = "unlabeled_file"  # a video outside every class folder (warning)

_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


class DataError(AvserveError):
    """A dataset source that cannot be used as given (code: one of the constants above)."""

    code = BAD_SOURCE


@dataclass(frozen=True)
class Problem:
    code: str
    where: str  # "list.csv:12", a path, or a class name
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message,
                "severity": self.severity}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    path: Path
    labels: tuple[int, ...]  # indices into Source.classes; () = unlabeled
    start_s: float | None = None  # window inside the file (None: from the start / to the end)
    end_s: float | None = None
    split: str | None = None  # normalised value of a split column (train / val / test)
    key: str = ""  # stable identity for the hash split (the path as written in the source)

    @property
    def label(self) -> int:
        """The single label (the first one of a multi-label row); -1 when unlabeled."""
        return self.labels[0] if self.labels else -1


@dataclass
class Source:
    kind: str  # avsynth | folder | csv | jsonl | kinetics
    location: Path
    classes: tuple[str, ...]
    samples: list[Sample]
    multi_label: bool = False
    problems: list[Problem] = field(default_factory=list)
    flip_label_map: list[int] | None = None

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def class_counts(self) -> dict[str, int]:
        counts = Counter(i for s in self.samples for i in s.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def require_clean(self, allow_errors: bool = False) -> None:
        """Raise a ``DataError`` naming the first error (and how many) unless told to go on."""
        errors = self.errors
        if errors and not allow_errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise DataError(
                f"{self.location}: {first.where}: {first.message}{more}; "
                "`avserve data check` lists them all (training: --skip-bad leaves them out)",
                code=first.code,
            )
        if not self.samples:
            raise DataError(f"{self.location}: no usable samples", code=NO_SAMPLES)

    def subset(self, which: Subset, val_fraction: float = 0.0) -> Source:
        """Train or val part: by the split column when the source has one, else by path hash."""
        if which == "all":
            return self
        if any(s.split for s in self.samples):
            # rows without a split value follow the hash rule, so none disappears unnoticed
            keep = [
                s for s in self.samples if (s.split or hash_split(s.key, val_fraction)) == which
            ]
        elif val_fraction > 0:
            keep = [s for s in self.samples if hash_split(s.key, val_fraction) == which]
        else:
            keep = list(self.samples) if which == "train" else []
        return replace(self, samples=keep)

    def without(self, bad: Iterable[Path], problems: Sequence[Problem]) -> Source:
        """This source minus the samples at ``bad`` paths, with ``problems`` appended."""
        drop = set(bad)
        return replace(
            self,
            samples=[s for s in self.samples if s.path not in drop],
            problems=[*self.problems, *problems],
        )


def hash_split(key: str, val_fraction: float) -> str:
    """``val`` for a fixed ``val_fraction`` of keys (SHA-1 of the key), else ``train``.

    Deterministic across machines, runs and Python versions, and stable when files are added:
    a file never moves between train and val because another file appeared.
    """
    if val_fraction <= 0:
        return "train"
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64
    return "val" if h < val_fraction else "train"


def normalise_split(value: str) -> str | None:
    """``train`` / ``val`` / ``test`` for the usual spellings; None for an empty cell."""
    v = value.strip().lower()
    if not v:
        return None
    return _SPLIT_NAMES.get(v, v)


def sort_labels(names: Iterable[str]) -> tuple[str, ...]:
    """Sorted like torchvision's folder datasets; integer labels (PySlowFast lists) numerically."""
    unique = set(names)
    if unique and all(n.isdigit() for n in unique):
        return tuple(sorted(unique, key=int))
    return tuple(sorted(unique))


@dataclass(frozen=True)
class SourceSpec:
    """Where and how to read a source (``open_source``)."""

    location: Path
    format: str = "auto"  # auto | avsynth | folder | csv | jsonl
    videos_dir: Path | None = None  # root of relative list paths (default: the list's folder)
    classes: tuple[str, ...] | None = None  # a fixed label set; other labels are problems
    multi_label: bool | None = None  # None: multi-label when a row has several labels
    label_sep: str = "|"  # several labels in one CSV cell: "a|b"
