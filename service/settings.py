"""Service settings: one pydantic-settings class, read from ``AVSERVE_*`` env vars and ``.env``.

Nested groups use ``__``: ``AVSERVE_BATCHER__MAX_BATCH_SIZE=16``. The Redis URL is also read
from the conventional ``REDIS_URL``. Every field carries a description;
``service.settings_doc.settings_markdown_table`` renders them for the README so the
documentation cannot drift from the code.

Settings are plain data. Every group (``service.settings_groups``) reads its defaults from the
frozen config dataclass of its layer (batcher, queue, media, fetch, pipeline), so each default
is written once, and the ``*_config()``/``*_policy()`` methods translate groups back into those
dataclasses. Nothing is built or loaded here: the composition root ``service.wiring`` does that. Layers never read the
environment, and this module never imports torch (``tests/api/test_settings.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.batcher import BatcherConfig
from service.media.policy import FetchPolicy, MediaPolicy
from service.pipeline_config import PipelineConfig
from service.policies import PolicyConfig
from service.queue.config import QueueConfig
from service.runtime_spec import RuntimeKind
from service.settings_groups import (
    BatcherSettings,
    FetchSettings,
    MediaSettings,
    PipelineSettings,
    QueueSettings,
)
from service.settings_types import (
    Device,
    EmptyIsUnsetPath,
    RedisUrl,
    split_list,
)

ENV_PREFIX = "AVSERVE_"

__all__ = ["ENV_PREFIX", "BatcherSettings", "Settings"]


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
    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        validation_alias=AliasChoices("AVSERVE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector for traces, e.g. `http://otel-collector:4318` (also "
        "read from `OTEL_EXPORTER_OTLP_ENDPOINT`); unset = tracing off.",
    )
    # -- models and runtimes ----------------------------------------------------------------------
    model_dir: EmptyIsUnsetPath = Field(
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
    device: Device = Field(
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
    malloc_trim_threshold_mb: int = Field(
        default=256,
        ge=0,
        le=2047,  # mallopt takes a C int of bytes
        description="glibc malloc: free memory kept per heap before it goes back to the kernel "
        "(MB), with the mmap threshold at its 32 MB maximum and a 64 MB top pad, so a large "
        "model's activations are not page-faulted in again on every forward "
        "(`service.malloc_tuning`); 0 = glibc's defaults.",
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
    max_receiving_requests: int = Field(
        default=256,
        ge=1,
        description="Work requests whose body is still arriving, at once (separate from "
        "`max_concurrent_requests`: a work slot is taken only once the body is complete).",
    )
    body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time a request body may take before `min_body_rate` applies; then 408 "
        "`body_timeout`. `X-Request-Timeout` cannot extend it.",
    )
    min_body_rate: float = Field(
        default=32 * 1024,
        gt=0,
        description="Slowest accepted request body (bytes/s): each byte received extends the "
        "body deadline by 1/rate seconds.",
    )
    max_job_body_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Largest /v1/jobs body (bytes; unset: `max_body_bytes` plus 1 KiB per item "
        "of `queue.max_items_per_job`).",
    )
    tmp_dir: Path | None = Field(
        default=None,
        description="Where uploads and fetched videos are written (default: system temp).",
    )
    tmp_budget_bytes: int = Field(
        default=4 * 1024**3,
        ge=1,
        description="Disk that uploads and URL downloads in flight may take under `tmp_dir`; "
        "past it 507 `insufficient_storage`.",
    )
    tmp_min_free_bytes: int = Field(
        default=256 * 1024**2,
        ge=0,
        description="Free space always left on the `tmp_dir` volume: uploads and URL fetches "
        "that would go below it get 507.",
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
    redis_url: RedisUrl = Field(
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
        return split_list(v)

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
        # Located, not imported: importing ``models`` would pull in torch.
        spec = importlib.util.find_spec("models")
        assert spec is not None and spec.origin is not None, "the models package is installed"
        return Path(spec.origin).resolve().parent / "zoo"

    # The layers' frozen configs: plain translations, nothing is built or loaded here.
    def batcher_config(self) -> BatcherConfig:
        return BatcherConfig(**self.batcher.model_dump())

    def queue_config(self) -> QueueConfig:
        return QueueConfig(redis_url=self.redis_url, **self.queue.model_dump())

    def media_policy(self) -> MediaPolicy:
        m = self.media
        return MediaPolicy(
            max_bytes=m.max_bytes,
            max_duration_s=m.max_duration_s,
            max_pixels=m.max_pixels,
            max_wall_s=m.max_wall_s,
        )

    def fetch_policy(self) -> FetchPolicy:
        f = self.fetch
        return FetchPolicy(
            max_bytes=f.max_bytes,
            timeout_s=f.timeout_s,
            max_redirects=f.max_redirects,
            allow_private_networks=tuple(f.allow_private_networks),
            allow_hosts=tuple(f.allow_hosts),
        )

    def pipeline_config(self) -> PipelineConfig:
        p = self.pipeline
        return PipelineConfig(
            policy=PolicyConfig(
                default_k=p.default_k,
                max_overlap=p.max_overlap,
                adaptive_mass=p.adaptive_mass,
                early_exit_threshold=p.early_exit_threshold,
                early_exit_k=p.early_exit_k,
                rho=p.rho,
                window_snap=p.window_snap,
            ),
            default_policy=p.default_policy,
            dense_chunk=p.dense_chunk,
            glance_device=p.glance_device,
            cost_cache_dir=self.export_cache_dir,
        )

    def load_api_keys(self) -> list[str]:
        """Keys from ``api_keys`` and ``api_keys_file`` (blank lines and ``#`` comments ignored).

        Fails closed: a configured key file that cannot be read or holds no key raises
        ValueError (``create_app`` and ``service.startup.check_api_keys`` call this), so a
        mounted secret that came out empty never turns authentication off.
        """
        keys = [k.get_secret_value() for k in self.api_keys]
        path = self.api_keys_file
        if path is not None:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"api_keys_file {path} cannot be read ({e})") from None
            found = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
            if not found:
                raise ValueError(
                    f"api_keys_file {path} holds no API key (only blank lines or comments); "
                    "refusing to start with authentication off"
                )
            keys.extend(found)
        return keys
