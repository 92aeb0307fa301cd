"""Request/response shapes shared by the CLI, the HTTP API and queue workers (pydantic v2).

These are the public contract: the OpenAPI schema is generated from them.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

PolicyName = Literal["glance", "heuristic", "uniform", "dense"]


def _http_url(url: str) -> str:
    # Only the scheme is checked here; the fetcher parses the URL and checks its address.
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https") or "://" not in url:
        raise ValueError("only http:// and https:// URLs are accepted")
    return url


# The one URL type of request bodies (classify, job items, job callbacks): kept as sent.
HttpURL = Annotated[
    str,
    Field(min_length=8, max_length=4096, json_schema_extra={"format": "uri"}),
    AfterValidator(_http_url),
]


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
    k: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Number of clip windows (dense ignores it: warning `k_ignored`).",
    )
    top_k: int = Field(5, ge=1, le=100, description="Labels returned per head.")
    model: str | None = Field(None, description="Model package name; default package if absent.")
    return_windows: bool = Field(True, description="Include the windows that were looked at.")
    return_saliency: bool = Field(
        False,
        description="Include `saliency`: the selection score of every glance snippet over time "
        "(glance and heuristic policies).",
    )
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Override the package's abstention threshold: the top known-class "
        "probability below which a head answers 'unknown'.",
    )


VerdictReason = Literal["no_event_found", "out_of_distribution", "missing_modality"]


class HeadVerdict(BaseModel):
    """Whether the head recognised one of its classes (see ``service.verdict``)."""

    verdict: Literal["known", "unknown"]
    reason: VerdictReason | None = Field(
        None,
        description="Why unknown: no_event_found (background won), missing_modality (the best "
        "class needs the sound the video lacks), out_of_distribution (best class too weak).",
    )
    label: str | None = Field(None, description="The recognised label when known.")
    confidence: float = Field(description="Calibrated probability of the best known class.")
    ood_score: float = Field(description="1 - confidence: near 1 when no known class fits.")
    min_confidence: float = Field(description="Threshold applied (package's or request's).")
    background: float | None = Field(
        None, description="Probability of the background outcome, when the head has one."
    )


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
    heads: dict[str, LabelScore] | None = Field(
        default=None,
        description="What the heavy model saw in this window alone: each head's best label.",
    )
    evidence: float | None = Field(
        default=None,
        description="1 - p(background) of this window alone: how much it counts in the fusion "
        "(None for a model without a background outcome).",
    )


class SaliencyPoint(BaseModel):
    t_s: float = Field(description="Snippet centre in seconds.")
    score: float = Field(
        description="The policy's raw selection score (glance: saliency logit; heuristic: sum "
        "of robust z-scores); only the order within one video is meaningful."
    )


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


class AnswerWarning(BaseModel):
    """Something the client should know about this answer (the scores are still given)."""

    code: str = Field(
        description="Stable code: partial_decode, decode_errors, silent_audio, k_ignored."
    )
    message: str


class ClassifyResult(BaseModel):
    model: ModelRef
    policy: PolicyName
    k: int = Field(description="Clip windows actually classified.")
    heads: dict[str, list[LabelScore]] = Field(description="Top-k labels per output head.")
    verdicts: dict[str, HeadVerdict] = Field(
        default_factory=dict, description="Per head: did the model recognise one of its classes."
    )
    windows: list[WindowOut] | None = None
    saliency: list[SaliencyPoint] | None = Field(
        None, description="Per-snippet selection scores, when `return_saliency` was asked."
    )
    audio: Literal["present", "absent", "silent"] = Field(
        description="absent: no audio stream; silent: digital silence, treated as absent."
    )
    padded: bool = Field(False, description="Video shorter than one clip; frames were repeated.")
    early_exit: bool = False
    video: VideoSummary
    timings_ms: dict[str, float] = Field(
        description="Timings of the stages that ran (fetch, probe, glance_decode, glance_net or "
        "saliency, clip_decode, heavy_net) and their total, in ms."
    )
    compute: ComputeSummary
    warnings: list[AnswerWarning] = Field(
        default_factory=list,
        description="Decode errors, partial decode, silent audio, ignored options.",
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
