"""HTTP bodies of the jobs API (pydantic v2) and their conversion from backend records."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from service.queue.backend import ItemRecord, ItemState, JobRecord, JobStatus
from service.schemas import ClassifyOptions, ErrorDetail, HttpURL

Lane = Literal["high", "batch"]
CallbackStatus = Literal["waiting", "pending", "delivered", "failed"]


class JobItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpURL = Field(description="http(s) URL of one video.")


class JobCreate(ClassifyOptions):
    """A batch of videos classified with the same options (``ClassifyOptions`` fields)."""

    items: list[JobItemIn] = Field(min_length=1, description="Videos to classify, in order.")
    priority: Lane = Field(
        "batch", description="Queue lane: `high` items are served before `batch` items."
    )
    callback_url: HttpURL | None = Field(
        None, description="POSTed once with the job summary on completion."
    )

    def classify_options(self) -> ClassifyOptions:
        return ClassifyOptions.model_validate(
            self.model_dump(include=set(ClassifyOptions.model_fields))
        )

    def body_hash(self) -> str:
        """Hash of the canonical JSON body: equal requests hash equal whatever their spacing."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobProgress(BaseModel):
    total: int
    done: int
    failed: int
    cancelled: int
    pending: int = Field(description="Items not final yet (queued or running).")


class JobItemOut(BaseModel):
    index: int
    url: str
    state: ItemState
    result: dict[str, Any] | None = Field(None, description="A ClassifyResult when state=done.")
    error: ErrorDetail | None = Field(None, description="Typed error when state=failed.")
    finished_at: datetime | None = None
    deliveries: int | None = Field(None, description="Times the item was handed to a worker.")


class CallbackOut(BaseModel):
    url: str
    status: CallbackStatus
    attempts: int = 0
    error: str | None = None


class JobOut(BaseModel):
    id: str
    status: JobStatus
    priority: Lane
    progress: JobProgress
    options: ClassifyOptions
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(None, description="When the job and results expire.")
    callback: CallbackOut | None = None
    durable: bool = Field(description="False on the in-process queue (lost on restart).")
    items: list[JobItemOut] = Field(default_factory=list)
    items_offset: int = 0
    items_next: int | None = Field(None, description="Offset of the next page of items.")


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _ts(value: float | None) -> datetime | None:
    return None if value is None else _dt(value)


def item_out(item: ItemRecord) -> JobItemOut:
    rec = item.record or {}
    err = rec.get("error")
    return JobItemOut(
        index=item.index,
        url=item.url,
        state=item.state,
        result=rec.get("result"),
        error=ErrorDetail(code=err["code"], message=err.get("message", "")) if err else None,
        finished_at=_ts(rec.get("finished_at")),
        deliveries=rec.get("deliveries"),
    )


def job_out(
    job: JobRecord,
    *,
    durable: bool,
    now: float,
    items: list[ItemRecord] | None = None,
    offset: int = 0,
) -> JobOut:
    callback = None
    if job.callback_url:
        callback = CallbackOut(
            url=job.callback_url,
            status=cast(CallbackStatus, job.callback_status or "waiting"),
            attempts=job.callback_attempts,
            error=job.callback_error,
        )
    page = items or []
    next_offset = offset + len(page)
    return JobOut(
        id=job.job_id,
        status=job.status,
        priority=cast(Lane, job.lane),
        progress=JobProgress(
            total=job.total,
            done=job.done,
            failed=job.failed,
            cancelled=job.cancelled,
            pending=job.pending,
        ),
        options=ClassifyOptions.model_validate_json(job.options_json),
        created_at=_dt(job.created_at),
        updated_at=_dt(job.updated_at),
        started_at=_ts(job.started_at),
        finished_at=_ts(job.finished_at),
        expires_at=_ts(now + job.expires_in_s) if job.expires_in_s is not None else None,
        callback=callback,
        durable=durable,
        items=[item_out(i) for i in page],
        items_offset=offset,
        items_next=next_offset if items is not None and next_offset < job.total else None,
    )
