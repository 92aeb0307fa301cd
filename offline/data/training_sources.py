"""Which data a training command reads: an AVSynth set as before, or a user source, split.

``native_avsynth`` keeps generated AVSynth sets on their original path (manifest cache, event
region, labels.json). Every other ``--data`` (class folders, CSV / JSONL / Kinetics lists, or an
AVSynth set split by ``--val-fraction``) goes through ``offline.data.sources``:

* train = the rows the split column marks ``train`` (rows without one: the hash rule), or all
  but the hash-selected ``--val-fraction``;
* val = ``--val-data`` opened with the training label set (other labels are errors), else the
  split column's / hash rule's ``val`` rows, else none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from offline.data.sources import DataError, Source, SourceSpec, open_source
from offline.data.sources.types import UNKNOWN_LABEL


@dataclass(frozen=True)
class SourceOptions:
    format: str = "auto"
    videos_dir: Path | None = None
    val_fraction: float = 0.0
    skip_bad: bool = False
    max_seconds: float = 10.0
    flip_pairs: str = ""  # "left:right,up:down": classes a horizontal flip turns into each other


def native_avsynth(data: Path, val_data: Path | None, opts: SourceOptions) -> bool:
    """True when both sets are generated AVSynth sets trained the way they always were."""
    sets = [data] + ([val_data] if val_data is not None else [])
    return (
        opts.format in ("auto", "avsynth")
        and opts.val_fraction == 0
        and all((d / "manifest.jsonl").is_file() for d in sets)
    )


def open_training(
    data: Path, val_data: Path | None, opts: SourceOptions
) -> tuple[Source, Source | None]:
    """(train, val) sources; raises ``DataError`` for unusable data unless ``skip_bad``."""
    full = open_source(SourceSpec(data, opts.format, opts.videos_dir))
    if not full.labelled:
        raise ValueError(
            f"{data}: no class folders, labels or manifest.jsonl; training needs labelled data "
            "(see docs/own-videos.md)"
        )
    full.require_clean(opts.skip_bad)
    if opts.flip_pairs:
        full = replace(full, flip_label_map=flip_map_of(full.classes, opts.flip_pairs))
    train = full.subset("train", opts.val_fraction)
    if val_data is not None:
        val: Source | None = open_source(
            SourceSpec(val_data, "auto", opts.videos_dir, classes=full.classes,
                       multi_label=full.multi_label)
        )  # fmt: skip
        assert val is not None
        val.require_clean(opts.skip_bad)
        val = replace(val, flip_label_map=full.flip_label_map)
    else:
        val = full.subset("val", opts.val_fraction)
        val = val if val.samples else None
    return train, val


def flip_map_of(classes: tuple[str, ...], pairs: str) -> list[int]:
    """The label of each class after a horizontal flip, from ``"a:b,c:d"`` (others unchanged).

    Direction classes (swipe left / right) need it: a flip with unchanged labels would teach the
    model that the two look alike. (Sources without pairs flip with unchanged labels; use
    ``--flip-prob 0`` for data where no flip is label-preserving.)
    """
    index = {c: i for i, c in enumerate(classes)}
    out = list(range(len(classes)))
    for pair in filter(None, (p.strip() for p in pairs.split(","))):
        a, sep, b = (x.strip() for x in pair.partition(":"))
        if not sep or a not in index or b not in index:
            raise DataError(
                f"--flip-pairs {pair!r}: need two classes of the data as a:b", code=UNKNOWN_LABEL
            )
        out[index[a]], out[index[b]] = index[b], index[a]
    return out


def describe(src: Source) -> dict[str, Any]:
    """What run.json records about a source (counts, and every problem left out)."""
    return {
        "kind": src.kind,
        "location": str(src.location),
        "samples": len(src.samples),
        "multi_label": src.multi_label,
        "class_counts": src.class_counts(),
        "left_out": [p.to_dict() for p in src.errors],
    }


def source_caches(
    train: Source,
    val: Source | None,
    cache_root: Path,
    cache_cfg: Any,
    opts: SourceOptions,
    workers: int,
    console: Console,
) -> tuple[Any, Any, Source, Source | None]:
    """Build (or reuse) the clip caches; report what was left out."""
    from offline.data.source_cache import build_source_cache

    caches: dict[str, Any] = {"train": None, "val": None}
    kept: dict[str, Source | None] = {"train": None, "val": None}
    for name, src in (("train", train), ("val", val)):
        if src is None:
            continue
        where = cache_root / name
        console.print(f"decoding {len(src.samples)} {name} clips of {src.location} into {where}")
        caches[name], kept[name] = build_source_cache(
            src, where, cache_cfg, workers=workers, max_seconds=opts.max_seconds,
            allow_errors=opts.skip_bad,
        )  # fmt: skip
        for p in kept[name].errors:  # type: ignore[union-attr]
            console.print(f"[yellow]left out[/yellow] {p.code} {p.where}: {p.message}")
    tk = kept["train"]
    assert tk is not None
    empty = [c for c, n in tk.class_counts().items() if n == 0]
    if empty:
        console.print(f"[yellow]warning[/yellow] no training clips for: {', '.join(empty)}")
    return caches["train"], caches["val"], tk, kept["val"]
