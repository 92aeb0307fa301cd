"""What an answer says besides the scores: the audio state and the warnings.

The media layer reports what it noticed while decoding (digital silence, skipped corrupt
packets, how much of the video decodes, ``service.media.types``); this module turns it into
the ``audio`` field and the ``warnings`` list of ``ClassifyResult``, so a client can tell a
clean answer from one given on damaged or silent input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from service.media.types import ClipBatch, GlanceSnippets, MediaInfo
from service.schemas import AnswerWarning, ClassifyResult, PolicyName

AudioState = Literal["present", "absent", "silent"]

# Below this share of the duration decoding, the answer warns (the media policy's
# ``min_coverage`` refuses the file altogether further down).
PARTIAL_DECODE_WARN = 0.99


def audio_state(
    info: MediaInfo, snippets: GlanceSnippets | None, clips: Sequence[ClipBatch]
) -> AudioState:
    """``absent`` without an audio stream; ``silent`` when every waveform the models received
    (snippets and clips) was digital silence; else ``present``."""
    if not info.has_audio:
        return "absent"
    parts: list[bool] = [c.audio_silent for c in clips]
    if snippets is not None:
        parts.append(snippets.audio_silent)
    return "silent" if parts and all(parts) else "present"


def answer_warnings(
    *,
    audio: AudioState,
    snippets: GlanceSnippets | None,
    clips: Sequence[ClipBatch],
    policy: PolicyName,
    k_requested: int | None,
    k_used: int,
) -> list[AnswerWarning]:
    """Warnings for one answer, in a fixed order (stable codes, prose messages)."""
    out: list[AnswerWarning] = []
    decoded: list[GlanceSnippets | ClipBatch] = [*clips]
    if snippets is not None:
        decoded.append(snippets)
    errors = sum(d.decode_errors for d in decoded)
    coverage = min((d.coverage for d in decoded), default=1.0)
    if coverage < PARTIAL_DECODE_WARN:
        out.append(
            AnswerWarning(
                code="partial_decode",
                message=f"only {coverage:.0%} of the video decodes (truncated or corrupt file); "
                "the end was classified from the last decodable frame",
            )
        )
    if errors:
        out.append(
            AnswerWarning(
                code="decode_errors",
                message=f"{errors} corrupt packet(s) were skipped while decoding",
            )
        )
    if audio == "silent":
        out.append(
            AnswerWarning(
                code="silent_audio",
                message="the audio track is digital silence; it was treated as absent",
            )
        )
    if policy == "dense" and k_requested is not None:
        out.append(
            AnswerWarning(
                code="k_ignored",
                message=f"policy 'dense' classifies a fixed {k_used} views (10 clips x 3 "
                f"crops, the official protocol); k={k_requested} was ignored",
            )
        )
    return out


def with_fetch_timing(result: ClassifyResult, seconds: float) -> ClassifyResult:
    """``result`` with the URL download listed first in ``timings_ms`` and counted in total."""
    ms = round(1000 * seconds, 3)
    timings = {"fetch": ms, **result.timings_ms}
    if "total" in timings:
        timings["total"] = round(timings["total"] + ms, 3)
    return result.model_copy(update={"timings_ms": timings})
