"""A configured API-key source that yields no key stops start-up: auth never fails open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app as cli_app


@pytest.mark.parametrize("content", ["", "\n\n", "# rotated 2025-01\n\n   \n# old-key\n"])
def test_a_key_file_without_keys_refuses_to_build_the_gateway(
    make_settings: Any, tmp_path: Path, content: str
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(content)
    settings = make_settings(api_keys_file=keys)
    with pytest.raises(ValueError, match="holds no API key"):
        settings.load_api_keys()
    with pytest.raises(ValueError, match="holds no API key"):
        create_app(settings)


def test_a_missing_key_file_refuses_to_build_the_gateway(
    make_settings: Any, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        create_app(make_settings(api_keys_file=tmp_path / "absent"))


def test_serve_refuses_to_start_with_an_empty_key_file(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_settings()  # clears the developer's AVSERVE_* environment
    keys = tmp_path / "keys"
    keys.write_text("# no keys yet\n")
    monkeypatch.setenv("AVSERVE_API_KEYS_FILE", str(keys))
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "AVSERVE_API_KEYS_FILE" in lines[0]
    assert "holds no API key" in lines[0]
