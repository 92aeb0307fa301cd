"""Fixtures of the gateway tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.api.helpers import write_tiny_package


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding one real (tiny, random-weight) package named ``tiny``."""
    root = tmp_path_factory.mktemp("models")
    write_tiny_package(root)
    return root


@pytest.fixture
def make_settings(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings for a test app; the developer's env and .env never leak into a test."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    keep = {"AVSERVE_SHARED_DIR", "AVSERVE_TEST_REDIS_URL"}
    for key in list(os.environ):
        if (key.startswith("AVSERVE_") and key not in keep) or key == "REDIS_URL":
            monkeypatch.delenv(key)

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "model_dir": tiny_model_dir,
            "device": "cpu",
            "tmp_dir": tmp_path,
            "shutdown_grace_s": 2.0,
        }
        return Settings(**(base | overrides))

    return make
