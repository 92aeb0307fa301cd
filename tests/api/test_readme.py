"""The README as a newcomer follows it: its example answer, commands and facts match the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.pipeline import STAGES
from service.schemas import ClassifyResult

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
SHIPPED = json.loads((REPO / "models" / "zoo" / "avsynth" / "config.json").read_text())


@pytest.fixture(scope="module")
def example() -> dict[str, object]:
    block = README.split("The answer for", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    parsed: dict[str, object] = json.loads(block)
    return parsed


def test_example_answer_names_the_shipped_model_and_its_head(example: dict[str, object]) -> None:
    assert example["model"] == {"name": SHIPPED["name"], "version": SHIPPED["version"]}
    heads = example["heads"]
    assert isinstance(heads, dict)
    assert set(heads) <= {h["name"] for h in SHIPPED["heads"]}
    labels = {label for h in SHIPPED["heads"] for label in h["labels"]}
    assert {s["label"] for scores in heads.values() for s in scores} <= labels


def test_example_answer_uses_only_fields_and_stages_that_exist(
    example: dict[str, object],
) -> None:
    assert set(example) <= set(ClassifyResult.model_fields)
    timings = example["timings_ms"]
    assert isinstance(timings, dict)
    assert set(timings) <= {*STAGES, "fetch", "total"}
    scores = [s["score"] for v in example["heads"].values() for s in v]  # type: ignore[attr-defined]
    assert all(s == round(s, 4) for s in scores)


def test_glance_snippet_facts_match_the_shipped_package() -> None:
    glance = SHIPPED["glance"]["config"]
    said = (
        f"{glance['num_snippets']} of {glance['frame_size']} px and\n{glance['audio_seconds']:g} s"
    )
    assert said in README


def test_commands_say_where_avserve_lives_and_demos_are_held_out() -> None:
    assert ".venv/bin/avserve" in README and "source .venv/bin/activate" in README
    demo = re.search(r"avserve data avsynth [^\n`]*", README)
    assert demo is not None and "--subset test" in demo.group(0)
    assert "manifest.jsonl" in README
    assert "make serve PORT=" in README


def test_docs_point_at_files_that_exist() -> None:
    for doc in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (REPO / doc).is_file(), doc
