"""Fixtures of the gateway tests."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import BatcherSettings, Settings
from tests.api.helpers import write_tiny_package
from tests.api.servers import ServerProcess, running_server, serve_command


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
            # batch caps measured at start-up depend on the machine: tests that count batches
            # keep the configured maximum (tests/api/test_models_and_health.py turns it on)
            "batcher": BatcherSettings(autotune=False),
        }
        return Settings(**(base | overrides))

    return make


@pytest.fixture(scope="module")
def media_server(media_dir: Path) -> Iterator[str]:
    """``host:port`` of a loopback HTTP server over ../shared/media (for URL classify tests)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def pipeline_server(
    tiny_model_dir: Path, media_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``avserve serve`` (real pipeline, tiny package) on loopback; the media server is on the
    fetch allow-list, nothing else private is."""
    env = {
        "AVSERVE_MODEL_DIR": str(tiny_model_dir),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_MEDIA__DECODE_WORKERS": "2",
        "AVSERVE_FETCH__ALLOW_HOSTS": json.dumps([media_server]),
        "AVSERVE_FETCH__TIMEOUT_S": "5",
    }
    with running_server(serve_command, env, tmp_path_factory.mktemp("logs")) as proc:
        yield proc
