"""The README's example answer is what the shipped model really answers for that demo video."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import models
from models import load_package
from offline.data.avsynth import sample_spec, write_clip
from offline.data.avsynth.generate import clip_seed
from offline.evaluation.long import _EagerInfer
from service.inline_decoder import InlineDecoder
from service.pipeline import Pipeline
from service.pipeline_config import PipelineConfig
from service.schemas import ClassifyOptions

REPO = Path(__file__).resolve().parents[2]
ZOO = Path(models.__file__).resolve().parent / "zoo" / "avsynth"


def _example() -> dict[str, object]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("The answer for", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    parsed: dict[str, object] = json.loads(block)
    return parsed


@pytest.mark.slow
def test_the_readme_example_is_the_shipped_models_real_answer(tmp_path: Path) -> None:
    # `avserve data avsynth --split long --subset test` writes this as long-test-000000.mp4
    video = tmp_path / "long-test-000000.mp4"
    write_clip(video, sample_spec(clip_seed("test", 0, 0), "long"))
    package = load_package(ZOO)
    pipeline = Pipeline(package, InlineDecoder(), _EagerInfer(package), PipelineConfig())
    got = asyncio.run(pipeline.classify(video, ClassifyOptions(k=2, top_k=2))).model_dump(
        mode="json"
    )
    want = _example()
    for key in ("model", "policy", "k", "audio", "video", "warnings"):
        assert got[key] == want[key], key
    assert got["compute"] == pytest.approx(want["compute"], abs=1e-3)
    for head, scores in want["heads"].items():  # type: ignore[attr-defined]
        assert [s["label"] for s in got["heads"][head]] == [s["label"] for s in scores]
        assert [s["score"] for s in got["heads"][head]] == pytest.approx(
            [s["score"] for s in scores], abs=0.01
        )
    assert {h: (v["verdict"], v["reason"], v["label"]) for h, v in got["verdicts"].items()} == {
        h: (v["verdict"], v["reason"], v["label"])
        for h, v in want["verdicts"].items()  # type: ignore[attr-defined]
    }
    assert [(w["start_s"], w["box"]) for w in got["windows"]] == [
        (w["start_s"], w["box"])
        for w in want["windows"]  # type: ignore[attr-defined]
    ]
    # each window's own reading: the label it saw and its evidence (what it weighs in fusion)
    assert [w["heads"]["avsynth"]["label"] for w in got["windows"]] == [
        w["heads"]["avsynth"]["label"]
        for w in want["windows"]  # type: ignore[attr-defined]
    ]
    assert [w["evidence"] for w in got["windows"]] == pytest.approx(
        [w["evidence"] for w in want["windows"]],  # type: ignore[attr-defined]
        abs=0.02,
    )
