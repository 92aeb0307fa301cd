"""Model listing and the Open Inference Protocol health paths, on a real (tiny) package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.api import create_app
from service.errors import AvserveError
from tests.api.helpers import serve_in_process, write_tiny_package
from tests.api.test_http_contract import assert_error


async def test_models_lists_the_loaded_package_as_its_config_says(
    make_settings: Any, tiny_model_dir: Path
) -> None:
    config = json.loads((tiny_model_dir / "tiny" / "config.json").read_text())
    async with serve_in_process(make_settings()) as (_, client):
        listing = (await client.get("/v1/models")).json()
        one = (await client.get("/v1/models/tiny")).json()
    assert listing["models"] == [one]
    assert (one["name"], one["version"]) == (config["name"], config["version"])
    assert one["default"] and one["ready"]
    assert (one["runtime"], one["device"]) == ("eager", "cpu")
    assert [(h["name"], h["labels"]) for h in one["heads"]] == [
        (h["name"], h["labels"]) for h in config["heads"]
    ]
    pre = config["preprocessing"]
    frames, audio = one["inputs"]
    assert frames == {
        "name": "frames",
        "shape": [pre["num_frames"], None, None, 3],  # square crops of any side
        "dtype": "uint8",
    }
    assert (one["crop_size"], one["test_crop_size"]) == (pre["crop_size"], pre["test_crop_size"])
    assert audio["name"] == "audio" and audio["dtype"] == "float32"
    # Without REDIS_URL, jobs run on the in-process queue, and the listing says it is not durable.
    assert listing["jobs"]["backend"] == "memory" and listing["jobs"]["durable"] is False


async def test_a_directory_of_packages_serves_each_and_honours_the_default(
    make_settings: Any, tmp_path: Path
) -> None:
    root = tmp_path / "zoo"
    write_tiny_package(root, "alpha", seed=1)
    write_tiny_package(root, "beta", seed=2)
    async with serve_in_process(make_settings(model_dir=root, default_model="beta")) as (_, c):
        models = (await c.get("/v1/models")).json()["models"]
        assert [(m["name"], m["default"]) for m in models] == [("alpha", False), ("beta", True)]
        assert (await c.get("/v2/models/alpha/ready")).json() == {"name": "alpha", "ready": True}
        assert_error(await c.get("/v2/models/gamma/ready"), 404, "model_not_found")


async def test_ready_and_live_after_warm_up(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (app, client):
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        registry = app.state.services.registry
        batcher = registry.get("tiny").batcher
        # The batcher's own warm-up batch runs outside the counters; the pipeline warm-up
        # (one synthetic video through the whole path, service/warmup.py) is one real batch.
        assert batcher.exec_count == 1
        assert registry.ready


async def test_start_up_caps_the_batches_where_bigger_ones_stop_paying(make_settings: Any) -> None:
    from service.batch_tuning import candidate_sizes
    from service.settings import BatcherSettings

    settings = make_settings(batcher=BatcherSettings(max_batch_size=8, autotune=True))
    async with serve_in_process(settings) as (app, client):
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        cap = app.state.services.registry.get("tiny").batcher.config.max_batch_size
        assert cap in candidate_sizes(8)  # measured on this machine: any of 1, 2, 4, 8


async def test_the_app_is_not_ready_before_its_lifespan_started(make_settings: Any) -> None:
    import httpx

    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        assert_error(await client.get("/v2/health/ready"), 503, "not_ready")
        assert (await client.get("/v2/health/live")).status_code == 200


async def test_a_missing_model_directory_fails_startup_with_a_clear_message(
    make_settings: Any, tmp_path: Path
) -> None:
    app = create_app(make_settings(model_dir=tmp_path / "empty"))
    with pytest.raises(AvserveError, match="no model package found"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_broken_package_fails_startup(make_settings: Any, tmp_path: Path) -> None:
    pkg = write_tiny_package(tmp_path / "zoo")
    (pkg / "config.json").write_text('{"format": "something else"}')
    app = create_app(make_settings(model_dir=tmp_path / "zoo"))
    with pytest.raises(AvserveError, match="cannot load model package"):
        async with app.router.lifespan_context(app):
            pass
