"""An in-process ``Decoder``: the media functions run in a thread of this process.

For trusted inputs only (our own generated datasets, evaluation, tests): untrusted input goes
through ``service.media.DecodePool``, whose worker processes carry wall-clock and memory
limits and can be killed without taking the caller down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from service.media import MediaPolicy, probe, read_clips, read_snippets
from service.media.types import (
    ClipBatch,
    ClipSpec,
    ClipWindow,
    GlanceSnippets,
    MediaInfo,
    SnippetSpec,
)


class InlineDecoder:
    def __init__(self, policy: MediaPolicy | None = None) -> None:
        self.policy = policy or MediaPolicy()

    async def probe(self, path: Path) -> MediaInfo:
        return await asyncio.to_thread(probe, path, self.policy)

    async def snippets(self, path: Path, info: MediaInfo, spec: SnippetSpec) -> GlanceSnippets:
        return await asyncio.to_thread(read_snippets, path, info, spec, self.policy)

    async def clips(
        self, path: Path, info: MediaInfo, windows: Sequence[ClipWindow], spec: ClipSpec
    ) -> ClipBatch:
        return await asyncio.to_thread(read_clips, path, info, list(windows), spec, self.policy)
