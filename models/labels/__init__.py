"""Class-name sets shipped as package data (``models/labels/<name>.txt``, one name per line).

``resolve_labels`` turns a ``--labels`` value (a set name or a file) into names;
``guess_label_set`` picks a set when a checkpoint's format and class count leave no doubt.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

# Checkpoint formats whose public model zoos only publish Kinetics-400 heads of 400 classes.
_KINETICS_ZOO_FORMATS = frozenset({"pytorchvideo", "caffe2", "pyslowfast"})


class LabelsError(ValueError):
    """A label set name is unknown or a labels file is unreadable or malformed."""


def label_sets() -> list[str]:
    """Names of the shipped label sets."""
    root = resources.files(__name__)
    return sorted(p.name.removesuffix(".txt") for p in root.iterdir() if p.name.endswith(".txt"))


def load_label_set(name: str) -> list[str]:
    """The class names of a shipped set, in class-index order."""
    if name not in label_sets():
        raise LabelsError(f"unknown label set {name!r}; shipped: {', '.join(label_sets())}")
    text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return _lines(text)


def read_labels_file(path: Path) -> list[str] | dict[str, list[str]]:
    """One name per line, or JSON: a list, or ``{head: [names]}`` for multi-head models."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelsError(f"{path}: unreadable labels file ({e})") from e
    if path.suffix != ".json":
        return _lines(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelsError(f"{path}: invalid JSON ({e})") from e
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return data
    if isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        return data
    raise LabelsError(f"{path}: a JSON labels file holds a list of names or {{head: [names]}}")


def resolve_labels(spec: str) -> list[str] | dict[str, list[str]]:
    """``--labels`` value: an existing file path, else the name of a shipped set."""
    path = Path(spec)
    if path.is_file():
        return read_labels_file(path)
    if spec in label_sets():
        return load_label_set(spec)
    raise LabelsError(
        f"--labels {spec!r} is neither a file nor a shipped label set ({', '.join(label_sets())})"
    )


def guess_label_set(fmt: str, num_classes: int, dataset: str | None = None) -> str | None:
    """The shipped set a checkpoint surely uses, or None when that is not certain.

    Only a 400-class head from a Kinetics model-zoo format qualifies (and, when the checkpoint
    names its training set, that set is Kinetics): those zoos publish no other 400-class
    heads, while other class counts (Kinetics-600, AVA, Charades, SSv2, a user's own data) have
    no shipped set to match.
    """
    if dataset is not None and not str(dataset).lower().startswith("kinetics"):
        return None
    if fmt in _KINETICS_ZOO_FORMATS and num_classes == 400:
        return "kinetics400"
    return None


def _lines(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip())]
