"""Tiny generated AVSynth clips and tiny random packages shared by the glance/eval tests.

The code under test does not depend on a video's length, so the fast tests use short clips
(~0.5 s to generate each) as their "long" videos; tests on real 30-60 s videos are marked slow.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import models
from models.package import default_preprocessing
from offline.data.avsynth.classes import CLASS_NAMES
from offline.data.avsynth.generate import GenerateConfig, generate
from service.cli import app


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


def tiny_package(out: Path, arch: str, seed: int) -> Path:
    """A random ``arch`` package with the AVSynth labels at a 32 px crop (fast on CPU)."""
    torch.manual_seed(seed)
    model = models.build_model(arch, num_classes=len(CLASS_NAMES))
    pre = replace(default_preprocessing(model), crop_size=32, short_side=32, test_crop_size=32)
    return models.save_package(
        out, model, name=f"tiny-{arch}", version="1", labels=list(CLASS_NAMES), preprocessing=pre
    )


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("avsynth") / "test"
    generate(GenerateConfig(out=out, split="short", subset="test", count=4, seed=3))
    return out


@pytest.fixture(scope="session")
def heavy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_package(tmp_path_factory.mktemp("pkg") / "av", "avslowfast_tiny", seed=0)


def train_glance(heavy: Path, data: Path, out: Path, *extra: str) -> None:
    args = ["train", "glance", "--heavy", str(heavy), "--data", str(data), "--out", str(out),
            "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--num-snippets", "4",
            "--crops", "2", "--threads", "1", "--no-progress", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def glance_run(heavy_dir: Path, clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("glance") / "run"
    train_glance(heavy_dir, clips_dir, out)
    return out
