"""Out-of-domain videos: does the model say "none of my classes"?

Every media file of a folder (no labels needed: by construction none shows one of the
package's classes) goes through the real ``service.pipeline.Pipeline`` (in-process decoding,
eager runtime), as the server would classify it. A file the media layer refuses counts as an
error with its typed code, not as an answer. The abstention rate is over the answered files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models import load_package
from offline.evaluation.long import _EagerInfer
from offline.evaluation.stats import accuracy
from offline.provenance import machine
from service.errors import AvserveError
from service.inline_decoder import InlineDecoder
from service.pipeline import Pipeline
from service.pipeline_config import PipelineConfig
from service.schemas import ClassifyOptions, PolicyName

NOT_MEDIA = {".md", ".txt", ".json", ".jsonl", ".csv", ".yaml", ".yml", ".py", ".sh"}


def media_files(folder: Path) -> list[Path]:
    """Regular, non-hidden files that are not documentation or manifests, sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in NOT_MEDIA
    )


async def _run(
    files: list[Path],
    pipeline: Pipeline,
    options: ClassifyOptions,
    on_file: Callable[[], None] | None,
) -> list[dict[str, Any]]:
    head = pipeline.package.heads[0].name
    rows = []
    for path in files:
        row: dict[str, Any] = {"file": path.name}
        try:
            r = await pipeline.classify(path, options)
        except AvserveError as err:
            row.update(error=err.code, message=err.message)
        else:
            v = r.verdicts[head]
            top = r.heads[head][0]
            row.update(
                verdict=v.verdict, reason=v.reason, confidence=v.confidence,
                ood_score=v.ood_score, top_label=top.label, top_score=top.score,
                audio=r.audio, policy=r.policy, k=r.k,
            )  # fmt: skip
        rows.append(row)
        if on_file is not None:
            on_file()
    return rows


def evaluate_ood(
    folder: Path,
    package_dir: Path,
    policy: PolicyName | None = None,
    k: int | None = None,
    on_file: Callable[[], None] | None = None,
) -> dict[str, Any]:
    files = media_files(folder)
    if not files:
        raise ValueError(f"{folder}: no media files")
    package = load_package(package_dir)
    pipeline = Pipeline(package, InlineDecoder(), _EagerInfer(package), PipelineConfig())
    options = ClassifyOptions(policy=policy, k=k, top_k=1)
    rows = asyncio.run(_run(files, pipeline, options, on_file))
    answered = [r for r in rows if "verdict" in r]
    abstained = sum(r["verdict"] == "unknown" for r in answered)
    no_audio = [r for r in answered if r["audio"] != "present"]
    return {
        "data": str(folder),
        "package": str(package_dir),
        "model": {"name": package.name, "version": package.version},
        "policy": policy or pipeline.default_policy,
        "machine": machine(),
        "files": len(rows),
        "answered": len(answered),
        "errors": len(rows) - len(answered),
        "abstained": accuracy(abstained, len(answered)),
        "no_audio_abstained": accuracy(
            sum(r["verdict"] == "unknown" for r in no_audio), len(no_audio)
        ),
        "reasons": {
            r: sum(row.get("reason") == r for row in answered)
            for r in ("no_event_found", "out_of_distribution", "missing_modality")
        },
        "per_file": rows,
    }
