"""HTTP bodies of the gateway's own routes (models, health, the classify URL request).

The classify result and options are ``service.schemas`` (shared with the CLI and workers); the
jobs API's bodies are ``service.queue.schemas``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.schemas import ClassifyOptions, HttpURL


class HeadInfo(BaseModel):
    name: str
    num_classes: int
    multi_label: bool = Field(description="Sigmoid per label (true) or softmax over labels.")
    labels: list[str]
    temperature: float = Field(1.0, description="Fitted calibration temperature (1: none).")
    min_confidence: float = Field(
        0.0, description="Abstention threshold on the top known-class probability (0: none)."
    )
    background: str | None = Field(None, description="Label of the 'no class here' outcome.")
    calibration_metrics: dict[str, Any] = Field(
        default_factory=dict, description="ECE and abstention rates measured when fitted."
    )


class InputInfo(BaseModel):
    name: str
    shape: list[int | None] = Field(description="Per clip, without the batch axis.")
    dtype: str


class ModelInfo(BaseModel):
    name: str
    version: str
    default: bool = Field(description="Used when a request names no model.")
    ready: bool
    runtime: str = Field(description="eager, torchscript or onnx.")
    device: str
    max_batch_size: int
    heads: list[HeadInfo]
    inputs: list[InputInfo]
    crop_size: int = Field(description="Crop side of the window policies' clips (pixels).")
    test_crop_size: int = Field(description="Crop side of the dense protocol's views (pixels).")
    clip_seconds: float = Field(description="Time span of one clip (Fast frames x stride / fps).")
    glance: bool = Field(description="The package ships a glance network.")


class JobsInfo(BaseModel):
    """How batch jobs run here: without REDIS_URL the in-process queue is not durable."""

    backend: str
    durable: bool
    embedded_worker: bool
    lanes: list[str]
    max_items_per_job: int
    max_queue_length: int
    result_ttl_s: float
    max_deliveries: int


class ModelList(BaseModel):
    models: list[ModelInfo]
    jobs: JobsInfo | None = None


class LiveStatus(BaseModel):
    live: bool = True


class ReadyStatus(BaseModel):
    ready: bool


class ModelReadyStatus(BaseModel):
    name: str
    ready: bool


class ClassifyUrlRequest(ClassifyOptions):
    """JSON body of ``POST /v1/classify``: a video URL plus the classify options."""

    url: HttpURL = Field(description="http(s) URL of the video; fetched by the gateway.")
