"""Did the model recognise one of its classes? The per-head verdict of an answer.

Applied to the video-level probabilities of ``service.aggregate`` with the head's fitted rules
(``models.calibration.HeadCalibration``):

1. Without usable audio (no track, or digital silence), classes that only sound tells apart
   (``audio_groups``) are pooled to their group mean: the picture cannot decide between them.
2. ``unknown`` / ``no_event_found`` when the background outcome has the highest probability;
   ``unknown`` / ``missing_modality`` when the best class needs the sound that is missing;
   ``unknown`` / ``out_of_distribution`` when the best known class stays below
   ``min_confidence`` (the package's, or the request's override);
   otherwise ``known``.
3. ``ood_score`` = 1 - the top known-class probability: 0 for a sure recognition, near 1 when
   nothing the model knows fits.

Multi-label (sigmoid) heads recognise when any label reaches ``min_confidence`` (0.5 when the
package sets none).
"""

from __future__ import annotations

import numpy as np

from service.aggregate import HeadLayout
from service.schemas import HeadVerdict, VerdictReason

MULTI_LABEL_DEFAULT = 0.5


def pool_audio_groups(probs: np.ndarray, head: HeadLayout) -> np.ndarray:
    """Each audio group's scores replaced by the group mean (a video without usable audio)."""
    out = np.asarray(probs, dtype=np.float64).copy()
    for group in head.calibration.audio_groups:
        idx = [head.labels.index(name) for name in group]
        out[idx] = out[idx].mean()
    return out


def judge(
    probs: np.ndarray, head: HeadLayout, *, audio_usable: bool, min_confidence: float | None
) -> HeadVerdict:
    """The verdict of one head from its video-level probabilities."""
    cal = head.calibration
    default = cal.min_confidence or (MULTI_LABEL_DEFAULT if head.multi_label else 0.0)
    threshold = default if min_confidence is None else min_confidence
    bg = head.background_index
    known_idx = [i for i in range(head.size) if i != bg]
    best = max(known_idx, key=lambda i: float(probs[i]))
    confidence = float(probs[best])
    in_audio_group = any(head.labels[best] in g for g in cal.audio_groups)
    reason: VerdictReason | None = None
    if bg is not None and int(np.argmax(probs)) == bg:
        reason = "no_event_found"
    elif not audio_usable and in_audio_group:
        reason = "missing_modality"
    elif confidence < threshold:
        reason = "out_of_distribution"
    return HeadVerdict(
        verdict="unknown" if reason else "known",
        reason=reason,
        label=None if reason else head.labels[best],
        confidence=round(confidence, 4),
        ood_score=round(1.0 - confidence, 4),
        min_confidence=round(threshold, 4),
        background=None if bg is None else round(float(probs[bg]), 4),
    )
