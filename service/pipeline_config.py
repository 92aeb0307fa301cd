"""The classify pipeline's settings as a frozen dataclass (torch-free, unlike the pipeline).

``service.settings`` takes its pipeline defaults from here, so they are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.media.types import SnippetSpec
from service.policies import PolicyConfig
from service.schemas import PolicyName


@dataclass(frozen=True)
class PipelineConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    default_policy: PolicyName | None = (
        None  # None: glance when the package has one, else heuristic
    )
    snippets: SnippetSpec = field(default_factory=SnippetSpec)  # heuristic (glance uses its own)
    dense_chunk: int = 6  # dense views decoded + classified per step (bounds memory)
    glance_device: str = "cpu"
    # Compute accounting counted once per model and kept here (service.compute_cost); None:
    # the temp folder exports go to.
    cost_cache_dir: Path | None = None
