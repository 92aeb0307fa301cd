"""Service settings: one pydantic-settings class, read from ``AVSERVE_*`` env vars and ``.env``.

Nested groups use ``__``: ``AVSERVE_BATCHER__MAX_BATCH_SIZE=16``. The Redis URL is also read
from the conventional ``REDIS_URL``. Every field carries a description;
``service.settings_doc.settings_markdown_table`` renders them for the README so the
documentation cannot drift from the code.

The ``*_config()``/``*_policy()`` builders turn groups into the frozen config dataclasses of the
layers (batcher, media, fetch, queue, pipeline); those layers never read the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.batcher import BatcherConfig
from service.media.policy import FetchPolicy, MediaPolicy
from service.runtimes import RuntimeKind
from service.schemas import PolicyName

if TYPE_CHECKING:
    from service.metrics import Metrics
    from service.registry import ModelRegistry

ENV_PREFIX = "AVSERVE_"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatcherSettings(_Group):
    max_batch_size: int = Field(
        default=8, ge=1, le=256, description="Clips per heavy-model batch, at most."
    )
    max_queue_delay_ms: float = Field(
        default=5.0, ge=0, le=10_000, description="Longest a clip waits for a fuller batch (ms)."
    )
    max_queue_items: int = Field(
        default=256, ge=1, description="Clips waiting in the batcher before new work gets 429."
    )
    cross_request: bool = Field(
        default=True,
        description="Merge clips of different requests into one batch (false = batching off).",
    )

    def config(self) -> BatcherConfig:
        return BatcherConfig(
            max_batch_size=self.max_batch_size,
            max_queue_delay_ms=self.max_queue_delay_ms,
            max_queue_items=self.max_queue_items,
            cross_request=self.cross_request,
        )


class QueueSettings(_Group):
    prefix: str = Field(default="avserve", description="Redis key prefix of the job queue.")
    max_items_per_job: int = Field(
        default=10_000, ge=1, description="Videos one batch job may list."
    )
    max_queue_length: int = Field(
        default=100_000, ge=1, description="Unfinished queued videos before submissions get 429."
    )
    result_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long job results are kept (s)."
    )
    visibility_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A video idle this long in a dead worker's hands is re-delivered (s).",
    )
    max_deliveries: int = Field(
        default=5, ge=1, description="Deliveries before a video goes to the dead-letter stream."
    )
    concurrency: int = Field(default=4, ge=1, description="Videos one worker processes at a time.")
    shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="On shutdown, how long running items may finish (s)."
    )
    embedded_worker: bool | None = Field(
        default=None,
        description="Run a job worker inside the gateway (unset: only without Redis).",
    )


class FetchSettings(_Group):
    timeout_s: float = Field(default=30.0, gt=0, description="Whole URL download time limit (s).")
    max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest video fetched from a URL (bytes)."
    )
    max_redirects: int = Field(
        default=3, ge=0, le=10, description="Redirect hops followed, each re-checked."
    )
    allow_private_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs exempt from the private-address SSRF block (on-premise sources).",
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="TESTS ONLY: host[:port] entries exempt from the private-address SSRF block.",
    )

    def policy(self) -> FetchPolicy:
        return FetchPolicy(
            max_bytes=self.max_bytes,
            timeout_s=self.timeout_s,
            max_redirects=self.max_redirects,
            allow_private_networks=tuple(self.allow_private_networks),
            allow_hosts=tuple(self.allow_hosts),
        )


class MediaSettings(_Group):
    decode_workers: int = Field(default=2, ge=1, le=64, description="Decode worker processes.")
    max_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest media file accepted (bytes)."
    )
    max_duration_s: float = Field(default=3600.0, gt=0, description="Longest video accepted (s).")
    max_pixels: int = Field(
        default=4096 * 2304, ge=1, description="Largest frame (width x height) accepted."
    )
    max_wall_s: float = Field(
        default=60.0,
        gt=0,
        description="Wall-clock limit of one decode job (probe, snippets, clips).",
    )

    def policy(self) -> MediaPolicy:
        return MediaPolicy(
            max_bytes=self.max_bytes,
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
            max_wall_s=self.max_wall_s,
        )


class PipelineSettings(_Group):
    default_policy: PolicyName | None = Field(
        default=None,
        description="Window policy when a request names none (unset: glance when the package "
        "has a glance network, else heuristic).",
    )
    dense_chunk: int = Field(
        default=6, ge=1, description="Dense views decoded and classified per step (memory bound)."
    )
    glance_device: str = Field(default="cpu", description="Device of the small glance network.")
    default_k: int = Field(
        default=4, ge=1, le=16, description="Clip windows per video when a request names no k."
    )
    max_overlap: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="Largest overlap between two selected windows."
    )
    adaptive_mass: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Adaptive K: stop adding windows once this softmax saliency mass is covered.",
    )
    early_exit_threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Glance early exit: classify only `early_exit_k` windows when the glance "
        "head's top probability reaches this.",
    )
    early_exit_k: int = Field(default=1, ge=0, le=16, description="Windows kept on early exit.")
    rho: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Glance patch side as a fraction of the short side (unset: the one the "
        "package's glance network was trained with).",
    )


class Settings(BaseSettings):
    """All service settings (env prefix ``AVSERVE_``; nested groups with ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # -- server ---------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface `avserve serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `avserve serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the service loggers."
    )
    log_json: bool = Field(
        default=True, description="One JSON object per log line (false: plain text)."
    )
    # -- models and runtimes ----------------------------------------------------------------------
    model_dir: Path | None = Field(
        default=None,
        description="A model package, or a directory of packages. Default: the shipped "
        "`models/zoo` (the `avsynth` package).",
    )
    default_model: str | None = Field(
        default=None,
        description="Package used when a request names none (default: the first loaded).",
    )
    runtime: RuntimeKind = Field(
        default="eager", description="Heavy-model runtime: eager, torchscript, onnx."
    )
    device: str = Field(
        default="auto", description="cpu, cuda, cuda:N, or auto (cuda when available)."
    )
    fp16: bool = Field(
        default=True, description="fp16 autocast for the torch runtimes on CUDA (no effect on CPU)."
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="Intra-op threads for torch/ONNX Runtime (0 = library default).",
    )
    export_cache_dir: Path | None = Field(
        default=None,
        description="Where a missing `model.ts`/`model.onnx` is exported on first use "
        "(default: a temp directory).",
    )
    warmup_batch_size: int = Field(
        default=1,
        ge=1,
        description="Clips in the warm-up batch run before the service reports ready.",
    )
    batcher: BatcherSettings = Field(
        default=BatcherSettings(), description="Dynamic batcher (see its fields)."
    )
    # -- HTTP admission -------------------------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for /v1 (empty and no key file = auth off).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="File with one API key per line (e.g. a mounted Kubernetes secret).",
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Largest multipart upload to /v1/classify (bytes).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest request body for every other route (bytes)."
    )
    max_concurrent_requests: int = Field(
        default=64,
        ge=1,
        description="Work requests (classify, job submission) served at once; then 429.",
    )
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Default per-request deadline (s); exceeded -> 504."
    )
    max_request_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Largest deadline a client may ask for with `X-Request-Timeout`.",
    )
    tmp_dir: Path | None = Field(
        default=None,
        description="Where uploads and fetched videos are written (default: system temp).",
    )
    # -- lifecycle ------------------------------------------------------------------------------
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="After SIGTERM, keep answering (not ready) this long before closing.",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="After SIGTERM, how long in-flight requests may take to finish (s).",
    )
    # -- queue ----------------------------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "AVSERVE_REDIS_URL", "redis_url"),
        description="Redis for batch jobs (env `REDIS_URL` or `AVSERVE_REDIS_URL`); unset = "
        "in-process queue.",
    )
    queue: QueueSettings = Field(
        default=QueueSettings(), description="Batch-job queue (see its fields)."
    )
    # -- media ----------------------------------------------------------------------------------
    media: MediaSettings = Field(
        default=MediaSettings(), description="Decoding limits (see its fields)."
    )
    fetch: FetchSettings = Field(
        default=FetchSettings(), description="URL fetching (see its fields)."
    )
    pipeline: PipelineSettings = Field(
        default=PipelineSettings(), description="Classify pipeline (see its fields)."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    @field_validator("max_request_timeout_s")
    @classmethod
    def _timeouts(cls, v: float, info: Any) -> float:
        default = info.data.get("request_timeout_s")
        if default is not None and v < default:
            raise ValueError("max_request_timeout_s must be >= request_timeout_s")
        return v

    # -- derived --------------------------------------------------------------------------------
    def resolved_model_dir(self) -> Path:
        if self.model_dir is not None:
            return self.model_dir
        import models

        return Path(models.__file__).resolve().parent / "zoo"

    def load_api_keys(self) -> list[str]:
        """Keys from ``api_keys`` and ``api_keys_file`` (blank lines and ``#`` comments ignored)."""
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return keys

    def load_registry(
        self, metrics: Metrics | None = None, default_model: str | None = None
    ) -> ModelRegistry:
        """Load the configured model packages (``service.registry.load_registry``; blocking)."""
        from service.registry import load_registry

        return load_registry(
            self.resolved_model_dir(),
            runtime=self.runtime,
            device=self.device,
            fp16=self.fp16,
            threads=self.torch_threads,
            batcher=self.batcher_config(),
            cache_dir=self.export_cache_dir,
            default_model=default_model or self.default_model,
            warmup_batch_size=self.warmup_batch_size,
            metrics=metrics,
        )

    def batcher_config(self) -> BatcherConfig:
        return self.batcher.config()

    def queue_config(self) -> Any:
        """``service.queue.config.QueueConfig`` from the queue group and ``redis_url``."""
        from service.queue.config import QueueConfig

        return QueueConfig(redis_url=self.redis_url, **self.queue.model_dump())

    def media_policy(self) -> MediaPolicy:
        return self.media.policy()

    def fetch_policy(self) -> FetchPolicy:
        return self.fetch.policy()

    def pipeline_config(self) -> Any:
        """``service.pipeline.PipelineConfig`` (imported lazily: the pipeline imports models)."""
        from service.pipeline import PipelineConfig
        from service.policies import PolicyConfig

        p = self.pipeline
        return PipelineConfig(
            policy=PolicyConfig(
                default_k=p.default_k,
                max_overlap=p.max_overlap,
                adaptive_mass=p.adaptive_mass,
                early_exit_threshold=p.early_exit_threshold,
                early_exit_k=p.early_exit_k,
                rho=p.rho,
            ),
            default_policy=self.pipeline.default_policy,
            dense_chunk=self.pipeline.dense_chunk,
            glance_device=self.pipeline.glance_device,
        )
