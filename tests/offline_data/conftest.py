"""A tiny generated AVSynth set shared by the data tests (one short clip per class), and a
one-video long set."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.data.avsynth.classes import NUM_CLASSES
from offline.data.avsynth.generate import GenerateConfig, generate, write_manifest
from offline.data.avsynth.scene import SynthSpec


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("avsynth") / "train"
    generate(GenerateConfig(out=out, split="short", subset="train", count=NUM_CLASSES, seed=7))
    return out


def write_long_set(out: Path) -> SynthSpec:
    """``out`` becomes a generated set of one long video (the cheapest of 40 long specs)."""
    from offline.data.avsynth import sample_spec, write_clip

    spec = min(
        (sample_spec(s, "long") for s in range(40)),
        key=lambda s: s.num_frames * s.width * s.height,
    )
    rec = {"file": "long.mp4", "index": 0, "subset": "test", **write_clip(out / "long.mp4", spec)}
    write_manifest(out, [rec])
    return spec
