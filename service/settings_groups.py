"""The nested settings groups of ``service.settings.Settings``: one per layer.

``AVSERVE_BATCHER__*``, ``AVSERVE_QUEUE__*``, ``AVSERVE_FETCH__*``, ``AVSERVE_MEDIA__*`` and
``AVSERVE_PIPELINE__*``. Each group's defaults are read from the frozen config dataclass of its
layer, so each default is written once; ``Settings``' ``*_config()``/``*_policy()`` methods
translate the groups back into those dataclasses. Like ``service.settings``, this module never
imports torch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.batcher import BatcherConfig
from service.media.policy import FetchPolicy, MediaPolicy
from service.pipeline_config import PipelineConfig
from service.queue.config import QueueConfig
from service.schemas import PolicyName
from service.settings_types import CidrList, Device, HostPortList

# The layers' own defaults: the single source of every group default below.
_BATCHER = BatcherConfig()
_QUEUE = QueueConfig()
_FETCH = FetchPolicy()
_MEDIA = MediaPolicy()
_PIPELINE = PipelineConfig()
_POLICY = _PIPELINE.policy


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatcherSettings(_Group):
    max_batch_size: int = Field(
        default=_BATCHER.max_batch_size,
        ge=1,
        le=256,
        description="Clips per heavy-model batch, at most.",
    )
    max_queue_delay_ms: float = Field(
        default=_BATCHER.max_queue_delay_ms,
        ge=0,
        le=10_000,
        description="Longest a clip waits for a fuller batch (ms).",
    )
    max_queue_items: int = Field(
        default=_BATCHER.max_queue_items,
        ge=1,
        description="Clips waiting in the batcher before new work gets 429.",
    )
    cross_request: bool = Field(
        default=_BATCHER.cross_request,
        description="Merge clips of different requests into one batch (false = batching off).",
    )
    autotune: bool = Field(
        default=_BATCHER.autotune,
        description="At start-up, time the model at 1, 2, 4, ... clips and cap batches where "
        "bigger ones stop paying (a large model on a CPU); false keeps max_batch_size.",
    )
    adaptive_delay: bool = Field(
        default=_BATCHER.adaptive_delay,
        description="Wait max_queue_delay_ms for companions only while requests arrive often "
        "enough that one is due within it (false: always wait).",
    )
    saturated_spare_threads: int = Field(
        default=_BATCHER.saturated_spare_threads,
        ge=0,
        le=256,
        description="Full batches (a saturated process) also try this many fewer torch "
        "intra-op threads and keep whichever runs faster per clip (0 = always every thread).",
    )


class QueueSettings(_Group):
    prefix: str = Field(default=_QUEUE.prefix, description="Redis key prefix of the job queue.")
    max_items_per_job: int = Field(
        default=_QUEUE.max_items_per_job,
        ge=1,
        le=1_000_000,
        description="Videos one batch job may list.",
    )
    max_backlog_per_principal: int | None = Field(
        default=_QUEUE.max_backlog_per_principal,
        ge=1,
        description="Unfinished queued videos one API key may have before its submissions get "
        "429 `quota_exceeded` (unset: twice `max_items_per_job`, at most `max_queue_length`).",
    )
    max_queue_length: int = Field(
        default=_QUEUE.max_queue_length,
        ge=1,
        description="Unfinished queued videos before submissions get 429.",
    )
    result_ttl_s: float = Field(
        default=_QUEUE.result_ttl_s, gt=0, description="How long job results are kept (s)."
    )
    visibility_timeout_s: float = Field(
        default=_QUEUE.visibility_timeout_s,
        gt=0,
        description="A video idle this long in a dead worker's hands is re-delivered (s).",
    )
    max_deliveries: int = Field(
        default=_QUEUE.max_deliveries,
        ge=1,
        description="Deliveries before a video goes to the dead-letter stream.",
    )
    concurrency: int = Field(
        default=_QUEUE.concurrency, ge=1, description="Videos one worker processes at a time."
    )
    shutdown_grace_s: float = Field(
        default=_QUEUE.shutdown_grace_s,
        ge=0,
        description="On shutdown, how long running items may finish (s).",
    )
    embedded_worker: bool | None = Field(
        default=_QUEUE.embedded_worker,
        description="Run a job worker inside the gateway (unset: only without Redis).",
    )


class FetchSettings(_Group):
    timeout_s: float = Field(
        default=_FETCH.timeout_s, gt=0, description="Whole URL download time limit (s)."
    )
    max_bytes: int = Field(
        default=_FETCH.max_bytes, ge=1, description="Largest video fetched from a URL (bytes)."
    )
    max_redirects: int = Field(
        default=_FETCH.max_redirects,
        ge=0,
        le=10,
        description="Redirect hops followed, each re-checked.",
    )
    allow_private_networks: CidrList = Field(
        default_factory=list,
        description="CIDRs exempt from the private-address SSRF block (on-premise sources).",
    )
    allow_hosts: HostPortList = Field(
        default_factory=list,
        description="TESTS ONLY: host[:port] entries exempt from the private-address SSRF block.",
    )


class MediaSettings(_Group):
    decode_workers: int = Field(default=2, ge=1, le=64, description="Decode worker processes.")
    max_bytes: int = Field(
        default=_MEDIA.max_bytes, ge=1, description="Largest media file accepted (bytes)."
    )
    max_duration_s: float = Field(
        default=_MEDIA.max_duration_s, gt=0, description="Longest video accepted (s)."
    )
    max_pixels: int = Field(
        default=_MEDIA.max_pixels, ge=1, description="Largest frame (width x height) accepted."
    )
    max_wall_s: float = Field(
        default=_MEDIA.max_wall_s,
        gt=0,
        description="Wall-clock limit of one decode job (probe, snippets, clips).",
    )


class PipelineSettings(_Group):
    default_policy: PolicyName | None = Field(
        default=_PIPELINE.default_policy,
        description="Window policy when a request names none (unset: glance when the package "
        "has a glance network, else heuristic).",
    )
    dense_chunk: int = Field(
        default=_PIPELINE.dense_chunk,
        ge=1,
        description="Dense views decoded and classified per step (memory bound).",
    )
    glance_device: Device = Field(
        default=_PIPELINE.glance_device, description="Device of the small glance network."
    )
    default_k: int = Field(
        default=_POLICY.default_k,
        ge=1,
        le=16,
        description="Clip windows per video when a request names no k.",
    )
    max_overlap: float = Field(
        default=_POLICY.max_overlap,
        ge=0.0,
        lt=1.0,
        description="Largest overlap between two selected windows.",
    )
    adaptive_mass: float | None = Field(
        default=_POLICY.adaptive_mass,
        gt=0.0,
        le=1.0,
        description="Adaptive K: stop adding windows once this softmax saliency mass is covered.",
    )
    early_exit_threshold: float | None = Field(
        default=_POLICY.early_exit_threshold,
        gt=0.0,
        le=1.0,
        description="Glance early exit: classify only `early_exit_k` windows when the glance "
        "head's top probability reaches this.",
    )
    early_exit_k: int = Field(
        default=_POLICY.early_exit_k, ge=0, le=16, description="Windows kept on early exit."
    )
    rho: float | None = Field(
        default=_POLICY.rho,
        gt=0.0,
        le=1.0,
        description="Glance patch side as a fraction of the short side (unset: the one the "
        "package's glance network was trained with).",
    )
    window_snap: float = Field(
        default=_POLICY.window_snap,
        ge=0.0,
        le=0.5,
        description="A selected window may move by up to this fraction of a clip to start on "
        "a keyframe (less decoding, slightly different windows); 0 keeps starts exact.",
    )
