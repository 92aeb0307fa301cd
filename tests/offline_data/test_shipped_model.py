"""The shipped AVSynth package (models/zoo/avsynth): complete metadata, honest accuracy claims.

The claim in the package metadata is the top-1 that ``avserve eval short`` measured on the
300-clip test split. Here a fresh held-out set (a base seed no training or evaluation run used)
is generated and the package must reach the claim minus a binomial margin for that set's size
(3 standard errors), so the test fails if the claim was inflated or the package regressed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import models
from models import load_package
from offline.data.avsynth.classes import CLASSES
from offline.data.avsynth.generate import GenerateConfig, generate
from offline.evaluation.short import evaluate_short

ZOO = Path(models.__file__).resolve().parent / "zoo" / "avsynth"
FRESH_SEED = 4242  # never used by `make model` or the evaluation runs (they use seed 0)
FRESH_CLIPS = 40  # 4 per class


def test_the_shipped_package_is_complete_and_small() -> None:
    package = load_package(ZOO)
    cfg = package.config
    assert package.name == "avsynth" and package.version
    (head,) = package.heads
    assert not head.multi_label and head.num_classes == len(CLASSES)
    assert list(package.labels[head.name]) == [c.name for c in CLASSES]
    assert cfg.glance is not None and package.glance_model() is not None
    claims = cfg.metadata["claims"]
    assert 0.0 < claims["short_test_top1"] <= 1.0 and claims["short_test_clips"] >= 100
    files = sorted(p.name for p in ZOO.iterdir())
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pkl", ".ckpt"))]
    assert sum(p.stat().st_size for p in ZOO.iterdir()) <= 15 * 1024 * 1024


@pytest.mark.slow
def test_the_shipped_package_reaches_its_claim_on_fresh_held_out_clips(tmp_path: Path) -> None:
    claims = load_package(ZOO).config.metadata["claims"]
    claim = float(claims["short_test_top1"])
    generate(
        GenerateConfig(
            out=tmp_path, split="short", subset="test", count=FRESH_CLIPS, seed=FRESH_SEED
        )
    )
    report = evaluate_short(tmp_path, {"shipped": ZOO})
    measured = report["models"]["shipped"]["overall"]
    margin = 3 * math.sqrt(max(claim * (1 - claim), 0.02) / FRESH_CLIPS)
    assert measured["n"] == FRESH_CLIPS
    assert measured["top1"] >= claim - margin, (measured, claim, margin)
