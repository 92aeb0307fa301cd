"""Honest answers on labelled short clips: accuracy, abstention, calibration, missing audio.

Every clip is decoded as the server decodes it, classified by the package's served forward and
judged by the server's own rules (``service.aggregate`` + ``service.verdict``) — once as it is,
once with its audio removed (a video without an audio track). The set should hold class clips
and background clips (``avserve data avsynth --background N``) never used for training or for
fitting the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models import load_package
from offline.calibration import (
    CalibrationConfig,
    ClipScores,
    expected_calibration_error,
    score_clips,
    softmax_t,
)
from offline.evaluation.stats import accuracy
from offline.provenance import machine
from service.aggregate import fuse_windows, layout_heads
from service.schemas import HeadVerdict
from service.verdict import judge, pool_audio_groups


def _verdicts(
    logits: np.ndarray, layout: list[Any], *, audio: bool, min_confidence: float | None = None
) -> list[HeadVerdict]:
    head = layout[0]
    out = []
    for z in logits:
        probs = fuse_windows(z[None, :], np.ones(1), layout)[head.name]
        if not audio:
            probs = pool_audio_groups(probs, head)
        out.append(judge(probs, head, audio_usable=audio, min_confidence=min_confidence))
    return out


def honesty_report(package_dir: Path, s: ClipScores) -> dict[str, Any]:
    package = load_package(package_dir)
    head = package.heads[0]
    layout = layout_heads([(head.name, s.names, False)], package.config.calibration)
    rules = layout[0].calibration
    known = s.known
    with_audio = _verdicts(s.logits, layout, audio=True)
    silent = _verdicts(s.logits_silent, layout, audio=False)
    probs = softmax_t(s.logits, rules.temperature)
    top = probs.argmax(axis=1)
    sound = {n for g in s.audio_groups for n in g}
    sound_clip = np.array([s.names[y] in sound for y in s.labels]) & known
    silent_probs = np.stack(
        [pool_audio_groups(p, layout[0]) for p in softmax_t(s.logits_silent, rules.temperature)]
    )
    sound_cols = [s.names.index(n) for n in sound]
    visual = known & ~sound_clip
    unknown = np.array([v.verdict == "unknown" for v in with_audio])
    silent_unknown = np.array([v.verdict == "unknown" for v in silent])
    correct_known = np.array(
        [v.label == s.names[y] for v, y in zip(with_audio, s.labels, strict=True)]
    )
    return {
        "package": str(package_dir),
        "model": {"name": package.name, "version": package.version},
        "rules": rules.to_dict() | {"metrics": None},
        "clips": len(s.labels),
        "class_clips": int(known.sum()),
        "background_clips": int((~known).sum()),
        "top1": accuracy(int((top[known] == s.labels[known]).sum()), int(known.sum())),
        "known_and_correct": accuracy(int(correct_known[known].sum()), int(known.sum())),
        "false_abstention": accuracy(int(unknown[known].sum()), int(known.sum())),
        "background_abstention": accuracy(int(unknown[~known].sum()), int((~known).sum())),
        "ece": round(expected_calibration_error(probs, s.labels), 4),
        "ece_uncalibrated": round(
            expected_calibration_error(softmax_t(s.logits, 1.0), s.labels), 4
        ),
        "silent": {
            "max_sound_class_score": (
                round(float(silent_probs[:, sound_cols].max()), 4) if sound_cols else None
            ),
            "sound_class_clips_abstained": accuracy(
                int(silent_unknown[sound_clip].sum()), int(sound_clip.sum())
            ),
            "visual_class_top1": accuracy(
                int((silent_probs[visual].argmax(1) == s.labels[visual]).sum()), int(visual.sum())
            ),
            "reasons": {
                r: int(sum(v.reason == r for v in silent))
                for r in ("missing_modality", "out_of_distribution", "no_event_found")
            },
        },
    }


def evaluate_honesty(
    data_dir: Path,
    package_dir: Path,
    cfg: CalibrationConfig = CalibrationConfig(),
    on_clip: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The honesty report of one package on one labelled clip set (JSON-ready)."""
    scores = score_clips(load_package(package_dir), data_dir, cfg, on_clip)
    return {"data": str(data_dir), "machine": machine(), **honesty_report(package_dir, scores)}
