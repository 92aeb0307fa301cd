"""A generated AVSynth set (``manifest.jsonl`` + ``labels.json``) as a source."""

from __future__ import annotations

import json

from offline.data.avsynth.generate import read_manifest
from offline.data.sources.types import Sample, Source, SourceSpec


def open_avsynth(spec: SourceSpec) -> Source:
    root = spec.location
    records = read_manifest(root)
    labels_path = root / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.is_file() else {}
    names = tuple(labels.get("names") or sorted({str(r["class_name"]) for r in records}))
    samples = [
        # no split: a generated set is one subset; --val-fraction splits it by the hash rule
        Sample(root / r["file"], (int(r["label"]),), key=str(r["file"]))
        for r in records
    ]
    return Source("avsynth", root, names, samples, flip_label_map=labels.get("flip_label_map"))
