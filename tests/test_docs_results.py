"""Measured tables in the docs are rendered from the committed result files, never typed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _renderer():  # type: ignore[no-untyped-def]
    return load_script("render_results")


def test_every_results_table_in_the_docs_matches_its_json() -> None:
    r = _renderer()
    for doc in r.DOCS:
        text = doc.read_text()
        assert r.render(text) == text, f"{doc}: run python scripts/render_results.py"


def test_every_marked_table_has_its_result_file() -> None:
    r = _renderer()
    for doc in r.DOCS:
        text = doc.read_text()
        for name, (file, _) in r.RENDERERS.items():
            if f"<!-- results:{name}:start -->" in text:
                assert json.loads((r.RESULTS / file).read_text())


def test_the_result_files_behind_the_benchmark_page_are_not_git_ignored() -> None:
    # The page must be reproducible from a clone: its JSON has to be committable.
    r = _renderer()
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    files = [f for name, (f, _) in r.RENDERERS.items() if f"<!-- results:{name}:start -->" in text]
    assert files, "docs/benchmarks.md has no rendered section"
    ignored = subprocess.run(
        ["git", "check-ignore", *files], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == []
