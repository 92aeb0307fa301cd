"""Settings: env vars, .env, nested groups, the Redis URL aliases, the README table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from service.batcher import BatcherConfig
from service.media.policy import FetchPolicy, MediaPolicy
from service.pipeline_config import PipelineConfig
from service.queue.config import QueueConfig
from service.settings import Settings
from service.settings_doc import replace_table, settings_markdown_table


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("REDIS_URL", "AVSERVE_REDIS_URL", "AVSERVE_RUNTIME", "AVSERVE_API_KEYS"):
        monkeypatch.delenv(key, raising=False)


def test_env_vars_and_nested_groups_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_RUNTIME", "onnx")
    monkeypatch.setenv("AVSERVE_BATCHER__MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("AVSERVE_BATCHER__CROSS_REQUEST", "false")
    monkeypatch.setenv("AVSERVE_FETCH__ALLOW_HOSTS", '["127.0.0.1:8080"]')
    s = Settings()
    assert s.runtime == "onnx"
    assert s.batcher_config().max_batch_size == 16
    assert s.batcher_config().cross_request is False
    assert s.fetch.allow_hosts == ["127.0.0.1:8080"]


def test_dotenv_file_is_read_and_env_wins_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("AVSERVE_PORT=9100\nAVSERVE_REQUEST_TIMEOUT_S=7\n")
    monkeypatch.setenv("AVSERVE_PORT", "9200")
    s = Settings()
    assert (s.port, s.request_timeout_s) == (9200, 7.0)


@pytest.mark.parametrize("var", ["REDIS_URL", "AVSERVE_REDIS_URL"])
def test_redis_url_comes_from_either_variable(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    assert Settings().redis_url is None  # embedded default: in-process queue
    monkeypatch.setenv(var, "redis://cache:6379/2")
    s = Settings()
    assert s.redis_url == "redis://cache:6379/2"
    assert s.queue_config().redis_url == "redis://cache:6379/2"


def test_queue_settings_reach_the_queue_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_QUEUE__MAX_ITEMS_PER_JOB", "12")
    monkeypatch.setenv("AVSERVE_QUEUE__RESULT_TTL_S", "600")
    monkeypatch.setenv("AVSERVE_QUEUE__CONCURRENCY", "3")
    cfg = Settings().queue_config()
    assert (cfg.max_items_per_job, cfg.result_ttl_s, cfg.concurrency) == (12, 600.0, 3)


def test_api_keys_are_comma_separated_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_API_KEYS", " alpha , beta,,")
    s = Settings()
    assert s.load_api_keys() == ["alpha", "beta"]
    assert "alpha" not in repr(s)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("AVSERVE_RUNTIME", "tensorrt"),
        ("AVSERVE_BATCHER__MAX_BATCH_SIZE", "0"),
        ("AVSERVE_PORT", "70000"),
        ("AVSERVE_MAX_REQUEST_TIMEOUT_S", "1"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        Settings()


def test_the_default_model_dir_is_the_shipped_zoo() -> None:
    import models

    assert Settings().resolved_model_dir() == Path(models.__file__).resolve().parent / "zoo"


def test_markdown_table_documents_every_setting() -> None:
    table = settings_markdown_table()
    rows = table.splitlines()[2:]
    documented = {r.split("|")[1].strip() for r in rows}
    expected = set()
    for name, info in Settings.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            expected |= {f"`AVSERVE_{name.upper()}__{n.upper()}`" for n in ann.model_fields}
        elif name == "redis_url":
            expected.add("`REDIS_URL` / `AVSERVE_REDIS_URL`")
        else:
            expected.add(f"`AVSERVE_{name.upper()}`")
    assert documented == expected
    assert all(r.count("|") == 5 for r in rows), "a cell contains an unescaped pipe"
    assert all(r.split("|")[4].strip() for r in rows), "a setting has no description"


def test_readme_shows_the_current_settings_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert replace_table(readme) == readme, "run: python -m service.settings_doc README.md"


def test_importing_settings_does_not_import_torch() -> None:
    code = "import sys, service.settings; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_default_settings_give_the_layers_their_own_defaults() -> None:
    """Each group default is read from its layer's config, so nothing is written twice."""
    s = Settings()
    assert s.batcher_config() == BatcherConfig()
    assert s.queue_config() == QueueConfig()
    assert s.fetch_policy() == FetchPolicy()
    assert s.media_policy() == MediaPolicy()
    assert s.pipeline_config() == PipelineConfig()
