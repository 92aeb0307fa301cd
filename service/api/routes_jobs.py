"""/v1/jobs: batch classification jobs (submit, status, JSON-lines results, cancel).

The job service lives at ``request.app.state.jobs`` (``service.queue.JobService``).
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from service.api.job_checks import check_submission
from service.errors import AvserveError
from service.queue.backend import ANONYMOUS
from service.queue.models import JobCreate, JobOut
from service.queue.service import MAX_ITEM_OFFSET, MAX_ITEMS_PAGE, JobService
from service.schemas import ErrorResponse

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _err(description: str) -> dict[str, object]:
    return {"model": ErrorResponse, "description": description}


def _jobs(request: Request) -> JobService:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise AvserveError("batch jobs are not available on this server", code="not_ready")
    service: JobService = jobs
    return service


def _principal(request: Request) -> str:
    """The caller's key id (set by the API-key middleware); jobs are scoped to it."""
    return str(getattr(request.state, "principal", ANONYMOUS))


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    summary="Submit a batch job",
    responses={
        400: _err("Invalid body or Idempotency-Key (`invalid_request`, `url_invalid`)."),
        403: _err("An item or callback URL points at a forbidden address (`url_forbidden`)."),
        404: _err("Unknown model (`model_not_found`)."),
        409: _err("Idempotency-Key reused with a different body (`idempotency_conflict`)."),
        413: _err("Too many items (`too_large`)."),
        429: _err(
            "Queue full (`queue_full`) or this API key's backlog quota reached "
            "(`quota_exceeded`): retry after `Retry-After` seconds."
        ),
        503: _err("Queue store unavailable (`queue_unavailable`)."),
    },
)
async def create_job(
    body: JobCreate,
    request: Request,
    response: Response,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Same key + same body returns the same job; another body gives 409.",
    ),
) -> JobOut:
    jobs = _jobs(request)
    check_submission(request, body)
    job, created = await jobs.submit(body, idempotency_key, principal=_principal(request))
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="Job status, progress and a page of item results",
    responses={404: _err("Unknown or expired job (`job_not_found`).")},
)
async def get_job(
    job_id: str,
    request: Request,
    offset: int = Query(0, ge=0, le=MAX_ITEM_OFFSET, description="First item index of the page."),
    limit: int = Query(100, ge=0, le=MAX_ITEMS_PAGE, description="Items per page (0: none)."),
) -> JobOut:
    return await _jobs(request).get(
        job_id, offset=offset, limit=limit, principal=_principal(request)
    )


@router.get(
    "/{job_id}/results",
    summary="Final item results as JSON lines (one JobItemOut per line, in item order)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines."},
        404: _err("Unknown or expired job (`job_not_found`)."),
    },
)
async def job_results(job_id: str, request: Request) -> StreamingResponse:
    lines = await _jobs(request).open_results(job_id, principal=_principal(request))
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.delete(
    "/{job_id}",
    response_model=JobOut,
    summary="Cancel the items that have not started",
    responses={
        404: _err("Unknown or expired job (`job_not_found`)."),
        409: _err("The job already ended (`conflict`)."),
    },
)
async def cancel_job(job_id: str, request: Request) -> JobOut:
    return await _jobs(request).cancel(job_id, principal=_principal(request))
