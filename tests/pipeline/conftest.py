"""A tiny but real model package (random weights) with and without a glance network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from models.glance import GlanceConfig, GlanceNet

LABELS = ["alpha", "beta", "gamma", "delta", "epsilon"]


@pytest.fixture(scope="session")
def tiny_package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = models.build_model("avslowfast_tiny", num_classes=len(LABELS))
    glance = GlanceNet(GlanceConfig.tiny(heads=model.config.heads))
    return models.save_package(
        tmp_path_factory.mktemp("pkg") / "tiny",
        model,
        name="tiny",
        version="1",
        labels=LABELS,
        glance=glance,
    )


@pytest.fixture(scope="session")
def no_glance_package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = models.build_model("avslowfast_tiny", num_classes=len(LABELS))
    return models.save_package(
        tmp_path_factory.mktemp("pkg") / "plain", model, name="plain", version="1", labels=LABELS
    )
