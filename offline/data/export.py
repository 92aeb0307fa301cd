"""Write a generated AVSynth set out as a user would bring it: class folders or a CSV list.

Used to check that the user-source path (``offline.data.sources``) trains like the native
AVSynth path on the same clips, and by the end-to-end test of docs/own-videos.md.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from offline.data.avsynth.generate import read_manifest


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)  # same bytes, no copy (same file system)
    except OSError:
        shutil.copy2(src, dst)


def write_class_folders(data_dir: Path, out: Path) -> Path:
    """``out/<class_name>/<file>`` for every clip of the set."""
    for rec in read_manifest(data_dir):
        _place(data_dir / rec["file"], out / str(rec["class_name"]) / Path(rec["file"]).name)
    return out


def write_csv(data_dir: Path, out_csv: Path, split: str | None = None) -> Path:
    """``path,label[,split]`` with paths relative to ``data_dir`` (use it as ``--videos-dir``)."""
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", *(["split"] if split else [])])
        for rec in read_manifest(data_dir):
            writer.writerow([rec["file"], rec["class_name"], *([split] if split else [])])
    return out_csv
