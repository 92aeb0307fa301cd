"""`make serve` / `make test` and the packaging metadata, as a newcomer meets them (issue 14).

Dry runs (`make -n`) only: nothing is installed or started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


# Under `make test` the outer make's variables would make the inner one print
# "Entering/Leaving directory" lines and inherit its flags: run it as a newcomer's shell would.
OUTER_MAKE = ("HOST", "PORT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def dry_run(*args: str, env: dict[str, str] | None = None) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in OUTER_MAKE}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *args],
        cwd=REPO,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_serve_installs_the_project_without_dev_extras() -> None:
    lines = dry_run("serve")
    installs = [line for line in lines if "pip install" in line]
    assert any(line.endswith("pip install -q -e .") for line in installs)
    assert not any("[dev]" in line for line in installs)
    assert lines[-1] == ".venv/bin/avserve serve"  # AVSERVE_HOST/AVSERVE_PORT decide


def test_serve_passes_host_and_port_given_on_the_command_line() -> None:
    assert dry_run("serve", "HOST=0.0.0.0", "PORT=8123")[-1].endswith(
        "avserve serve --host 0.0.0.0 --port 8123"
    )


def test_a_port_variable_in_the_environment_does_not_override_avserve_port() -> None:
    assert dry_run("serve", env={"PORT": "5", "AVSERVE_PORT": "9000"})[-1].endswith("avserve serve")


def test_make_test_installs_torch_first_then_dev_extras_then_redis_then_pytest() -> None:
    lines = dry_run("test")
    text = "\n".join(lines)
    assert "-m venv .venv" in text
    order = [
        next(i for i, line in enumerate(lines) if '"torch==2.13.0"' in line),
        next(i for i, line in enumerate(lines) if '-e ".[dev]"' in line),
        next(i for i, line in enumerate(lines) if "ensure_redis.sh" in line),
        next(i for i, line in enumerate(lines) if "-m pytest" in line),
    ]
    assert order == sorted(order)


def test_package_metadata_builds_without_a_licence_deprecation_warning(tmp_path: Path) -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert isinstance(meta["project"]["license"], str)  # an SPDX expression, not a table
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copy(REPO / "README.md", src)
    for package in ("models", "service", "offline"):
        (src / package).mkdir()
        (src / package / "__init__.py").write_text("")
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from setuptools import build_meta;"
        f"build_meta.prepare_metadata_for_build_wheel({str(tmp_path)!r})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=src, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Deprecat" not in proc.stderr


def test_generated_demo_videos_are_ignored_by_git() -> None:
    assert "/demo/" in (REPO / ".gitignore").read_text().splitlines()
