"""Start-up: every setting validated up front, one line per problem, exit status 2 (issue 14)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import Settings
from service.settings_doc import settings_markdown_table
from service.startup import StartupError, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(os.environ):
        if key.startswith("AVSERVE_") or key == "REDIS_URL":
            monkeypatch.delenv(key)


# -- list settings: comma-separated or JSON ---------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["127.0.0.0/8,10.0.0.0/8", " 127.0.0.0/8 , 10.0.0.0/8 ", '["127.0.0.0/8", "10.0.0.0/8"]'],
)
def test_cidr_lists_take_commas_or_json(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS", value)
    assert Settings().fetch.allow_private_networks == ["127.0.0.0/8", "10.0.0.0/8"]


def test_a_single_cidr_needs_no_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8")
    assert Settings().fetch.allow_private_networks == ["127.0.0.0/8"]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("AVSERVE_FETCH__ALLOW_HOSTS", "media.local:8080,[::1]:9", ["media.local:8080", "[::1]:9"]),
        ("AVSERVE_FETCH__ALLOW_HOSTS", '["media.local"]', ["media.local"]),
        ("AVSERVE_API_KEYS", '["k1", "k2"]', ["k1", "k2"]),
        ("AVSERVE_API_KEYS", "k1,k2", ["k1", "k2"]),
    ],
)
def test_every_list_setting_takes_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(var, value)
    s = Settings()
    got = s.load_api_keys() if var == "AVSERVE_API_KEYS" else s.fetch.allow_hosts
    assert got == expected


def test_the_settings_table_documents_the_list_syntax() -> None:
    list_rows = [r for r in settings_markdown_table().splitlines() if "| list of" in r]
    assert len(list_rows) >= 3
    assert all("comma-separated or a JSON array" in r for r in list_rows)


# -- validation at start-up, one line naming the setting and the fix --------------------------


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS", '["not-a-cidr"]', "not a CIDR network"),
        ("AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS", "10.0.0.0/8,300.1.0.0/16", "300.1.0.0/16"),
        ("AVSERVE_FETCH__ALLOW_HOSTS", "http://media.local/", "not host or host:port"),
        ("AVSERVE_DEVICE", "gpu", "cpu, cuda, cuda:N or auto"),
        ("AVSERVE_PIPELINE__GLANCE_DEVICE", "tpu", "cpu, cuda, cuda:N or auto"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        ("AVSERVE_PORT", "http", "integer"),
        ("AVSERVE_BATCHER", "{not json", "not valid JSON"),
    ],
)
def test_invalid_settings_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(StartupError) as err:
        load_settings()
    line = str(err.value)
    assert "\n" not in line and var in line and says in line
    assert "fix it in the environment or .env" in line


def test_api_keys_never_appear_in_the_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_API_KEYS", '["sekrit", 3')
    with pytest.raises(StartupError) as err:
        load_settings()
    assert "sekrit" not in str(err.value) and "AVSERVE_API_KEYS" in str(err.value)


def test_an_empty_model_dir_variable_means_the_bundled_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AVSERVE_MODEL_DIR", "")
    assert Settings().model_dir is None


# -- avserve serve: exit status 2 and one line, before anything heavy --------------------------

runner = CliRunner()


def serve(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["serve", *args])
    return result.exit_code, result.output


def test_serve_refuses_a_bad_cidr_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS", '["not-a-cidr"]')
    code, out = serve()
    assert code == 2
    assert out.strip().count("\n") == 0 and "Traceback" not in out
    assert "AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS" in out


def test_serve_says_when_the_model_dir_is_missing(tmp_path: Path) -> None:
    code, out = serve("--model-dir", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in out and "Traceback" not in out
    assert out.strip().count("\n") == 0


def test_serve_says_when_the_model_dir_holds_no_package(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out = serve("--model-dir", str(tmp_path / "empty"))
    assert code == 2 and "holds no model package" in out and "Traceback" not in out


def test_serve_says_when_the_tmp_dir_is_missing(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVSERVE_TMP_DIR", str(tmp_path / "gone"))
    code, out = serve("--model-dir", str(tiny_model_dir))
    assert code == 2 and "AVSERVE_TMP_DIR" in out and "is not a folder" in out


def test_port_in_use_is_reported_before_the_models_load(tiny_model_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = serve("--model-dir", str(tiny_model_dir), "--port", str(port))
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in out
    assert "make serve PORT=" in out and "avserve ready" not in out and "Traceback" not in out


def test_serve_help_names_the_environment_variables() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "AVSERVE_HOST" in result.output and "AVSERVE_PORT" in result.output
    assert "Bind address ." not in result.output


@pytest.mark.e2e
def test_a_package_that_fails_to_load_is_one_line_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVSERVE_")}
    env |= {"PYTHONPATH": str(REPO), "AVSERVE_MODEL_DIR": str(broken.parent)}
    proc = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "avserve: cannot start:" in proc.stderr and "broken" in proc.stderr
