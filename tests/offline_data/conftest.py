"""A tiny generated AVSynth set shared by the data tests (one short clip per class)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.data.avsynth.classes import NUM_CLASSES
from offline.data.avsynth.generate import GenerateConfig, generate


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("avsynth") / "train"
    generate(GenerateConfig(out=out, split="short", subset="train", count=NUM_CLASSES, seed=7))
    return out
