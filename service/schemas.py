"""Request/response shapes shared by the CLI, the HTTP API and queue workers (pydantic v2).

These are the public contract: the OpenAPI schema is generated from them.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PolicyName = Literal["glance", "heuristic", "uniform", "dense"]


class Priority(enum.IntEnum):
    """Batcher lanes: interactive HTTP requests are served before batch-job items."""

    INTERACTIVE = 0
    BATCH = 1


# The heavy-model entry point the pipeline calls: a batch of K clips (model-ready uint8 frames
# and waveforms, keyed by ServingModel input name) -> logits [K, total_classes]. The dynamic
# batcher implements it for the server; a direct runtime call implements it for the CLI.
InferFn = Callable[[Mapping[str, np.ndarray], Priority, float | None], Awaitable[np.ndarray]]


class ClassifyOptions(BaseModel):
    """Per-request options; None means "the model package / server default"."""

    model_config = ConfigDict(extra="forbid")

    policy: PolicyName | None = Field(None, description="Window selection policy.")
    k: int | None = Field(None, ge=1, le=16, description="Number of clip windows (not for dense).")
    top_k: int = Field(5, ge=1, le=100, description="Labels returned per head.")
    model: str | None = Field(None, description="Model package name; default package if absent.")
    return_windows: bool = Field(True, description="Include the windows that were looked at.")


class LabelScore(BaseModel):
    label: str
    index: int
    score: float


class WindowOut(BaseModel):
    start_s: float
    end_s: float
    saliency: float = Field(description="Fusion weight of this window (sums to 1 over windows).")
    box: list[int] = Field(description="Crop box in source display pixels: [x, y, w, h].")
    padded: bool = False


class ModelRef(BaseModel):
    name: str
    version: str


class VideoSummary(BaseModel):
    duration_s: float
    width: int
    height: int
    fps: float | None
    container: str


class ComputeSummary(BaseModel):
    gmacs: float = Field(description="Multiply-adds spent on this video (glance + heavy), 1e9.")
    glance_gmacs: float
    heavy_gmacs: float
    dense30_gmacs: float = Field(description="What the official 10x3-view protocol would cost.")
    fraction_of_dense: float


class ClassifyResult(BaseModel):
    model: ModelRef
    policy: PolicyName
    k: int = Field(description="Clip windows actually classified.")
    heads: dict[str, list[LabelScore]] = Field(description="Top-k labels per output head.")
    windows: list[WindowOut] | None = None
    audio: Literal["present", "absent"]
    padded: bool = Field(False, description="Video shorter than one clip; frames were repeated.")
    early_exit: bool = False
    video: VideoSummary
    timings_ms: dict[str, float] = Field(
        description="Stage timings: probe, glance_decode, glance_net, clip_decode, heavy_net, total."
    )
    compute: ComputeSummary


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
