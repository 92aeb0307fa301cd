"""What the pipeline needs from outside: media decoding and metrics hooks, as protocols.

``service.media.DecodePool`` implements ``Decoder`` and ``service.metrics.Metrics`` implements
``PipelineObserver``; ``NullObserver`` is the pipeline's default when nothing observes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from service.media.types import (
    ClipBatch,
    ClipSpec,
    ClipWindow,
    GlanceSnippets,
    MediaInfo,
    SnippetSpec,
)


class Decoder(Protocol):
    """What the pipeline needs from media decoding (``service.media.DecodePool`` implements it)."""

    async def probe(self, path: Path) -> MediaInfo: ...

    async def snippets(self, path: Path, info: MediaInfo, spec: SnippetSpec) -> GlanceSnippets: ...

    async def clips(
        self, path: Path, info: MediaInfo, windows: Sequence[ClipWindow], spec: ClipSpec
    ) -> ClipBatch: ...


class PipelineObserver(Protocol):
    """Metrics hooks (``service.metrics.Metrics`` implements them)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def observe_stage_error(self, stage: str, code: str) -> None: ...

    def observe_video(self, duration_s: float, decode_s: float, audio_present: bool) -> None: ...

    def observe_verdict(self, model: str, head: str, reason: str | None) -> None: ...


class NullObserver:
    """Observes nothing."""

    def observe_stage(self, stage: str, seconds: float) -> None:
        pass

    def observe_stage_error(self, stage: str, code: str) -> None:
        pass

    def observe_video(self, duration_s: float, decode_s: float, audio_present: bool) -> None:
        pass

    def observe_verdict(self, model: str, head: str, reason: str | None) -> None:
        pass
