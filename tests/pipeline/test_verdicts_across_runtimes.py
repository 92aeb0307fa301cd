"""Calibration and abstention survive export: eager, TorchScript and ONNX give the same verdicts.

The shipped package's served forward runs in each runtime on the same decoded clips (class
clips, background clips, and the same clips without audio); the serving code then applies the
package's temperature, background weighting and threshold in one place for all of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import models
from models import load_package
from offline.data.avsynth.generate import GenerateConfig, generate
from offline.evaluation.short import _geometry, decode_clips
from service.aggregate import fuse_windows, layout_heads
from service.runtimes import build_runtime
from service.verdict import judge, pool_audio_groups

ZOO = Path(models.__file__).resolve().parent / "zoo" / "avsynth"

pytestmark = pytest.mark.slow


def test_every_runtime_gives_the_same_verdicts_and_scores(tmp_path: Path) -> None:
    package = load_package(ZOO)
    head = package.heads[0]
    layout = layout_heads(
        [(head.name, package.labels[head.name], False)], package.config.calibration
    )
    assert layout[0].calibration.background is not None  # the shipped head has the rules
    data = tmp_path / "clips"
    generate(GenerateConfig(out=data, split="short", subset="test", count=6, background=3, seed=77))
    spec, short_side = _geometry(package)
    clips = decode_clips(sorted(data.glob("*.mp4")), spec, short_side)
    inputs = {"frames": clips.frames, "audio": clips.audio}
    silent = {"frames": clips.frames, "audio": np.zeros_like(clips.audio)}

    def verdicts(kind: str) -> tuple[list[tuple[str, str | None, str | None]], np.ndarray]:
        rt = build_runtime(package, kind, "cpu", cache_dir=tmp_path / "exports")  # type: ignore[arg-type]
        out, scores = [], []
        for batch, audio in ((inputs, True), (silent, False)):
            for z in rt.run(batch):
                probs = fuse_windows(z[None, :], np.ones(1), layout)[head.name]
                if not audio:
                    probs = pool_audio_groups(probs, layout[0])
                v = judge(probs, layout[0], audio_usable=audio, min_confidence=None)
                out.append((v.verdict, v.reason, v.label))
                scores.append(probs)
        return out, np.stack(scores)

    eager, p_eager = verdicts("eager")
    for kind in ("torchscript", "onnx"):
        other, p_other = verdicts(kind)
        assert other == eager, kind
        np.testing.assert_allclose(p_other, p_eager, atol=1e-4)
    assert any(v == "unknown" for v, _, _ in eager) and any(v == "known" for v, _, _ in eager)
