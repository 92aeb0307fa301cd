"""Write the README's example answer: the shipped model's real answer for the demo video.

    .venv/bin/python scripts/readme_answer.py           # print the JSON block
    .venv/bin/python scripts/readme_answer.py --write   # and replace it in README.md

The demo video is ``long-test-000000.mp4`` of ``avserve data avsynth --split long --subset
test`` (regenerated here); ``tests/offline_eval/test_readme_answer.py`` checks the block.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models import load_package  # noqa: E402
from offline.data.avsynth import sample_spec, write_clip  # noqa: E402
from offline.data.avsynth.generate import clip_seed  # noqa: E402
from offline.evaluation.long import _EagerInfer  # noqa: E402
from service.inline_decoder import InlineDecoder  # noqa: E402
from service.pipeline import Pipeline  # noqa: E402
from service.pipeline_config import PipelineConfig  # noqa: E402
from service.schemas import ClassifyOptions  # noqa: E402

ZOO = REPO / "models" / "zoo" / "avsynth"
VIDEO_KEYS = ("duration_s", "width", "height", "fps", "container")


def answer() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long-test-000000.mp4"
        write_clip(video, sample_spec(clip_seed("test", 0, 0), "long"))
        package = load_package(ZOO)
        pipeline = Pipeline(package, InlineDecoder(), _EagerInfer(package), PipelineConfig())
        result = asyncio.run(pipeline.classify(video, ClassifyOptions(k=2, top_k=2)))
    return result.model_dump(mode="json")


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def block(got: dict[str, Any]) -> str:
    """The abridged answer, laid out as the README shows it."""
    heads = ",\n                        ".join
    lines = [
        "{",
        f'  "model": {_j(got["model"])},',
        f'  "policy": {_j(got["policy"])}, "k": {got["k"]},',
    ]
    head_parts = []
    for name, scores in got["heads"].items():
        head_parts.append(f"{_j(name)}: [" + heads(_j(s) for s in scores) + "]")
    lines.append('  "heads": {' + ", ".join(head_parts) + "},")
    lines.append(f'  "verdicts": {_j(got["verdicts"])},')
    windows = []
    for w in got["windows"]:
        first = {k: w[k] for k in ("start_s", "end_s", "saliency", "box", "padded")}
        rest = {k: w[k] for k in ("heads", "evidence")}
        windows.append(_j(first)[:-1] + ",\n               " + _j(rest)[1:])
    lines.append('  "windows": [' + ",\n              ".join(windows) + "],")
    lines.append(f'  "audio": {_j(got["audio"])},')
    lines.append(f'  "video": {_j({k: got["video"][k] for k in VIDEO_KEYS})},')
    timings = {k: round(v, 1) for k, v in got["timings_ms"].items()}
    lines.append(f'  "timings_ms": {_j(timings)},')
    lines.append(f'  "compute": {_j(got["compute"])},')
    lines.append(f'  "warnings": {_j(got["warnings"])}')
    lines.append("}")
    text = "\n".join(lines)
    json.loads(text)  # the layout is still valid JSON
    return text


def main() -> None:
    text = block(answer())
    print(text)
    if "--write" in sys.argv[1:]:
        readme = REPO / "README.md"
        src = readme.read_text(encoding="utf-8")
        head, rest = src.split("The answer for", 1)
        intro, after = rest.split("```json\n", 1)
        _, tail = after.split("\n```", 1)
        readme.write_text(
            f"{head}The answer for{intro}```json\n{text}\n```{tail}", encoding="utf-8"
        )
        print(f"wrote {readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
