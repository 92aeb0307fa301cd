"""/v1/jobs: batch classification jobs (submit, status, JSON-lines results, cancel).

The job service comes from ``JobsDep`` (``service.queue.JobService``, on ``app.state.jobs``).
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from service.api import paths
from service.api.deps import JobsDep, PrincipalDep
from service.api.errors import error_responses
from service.api.job_checks import check_submission
from service.queue.schemas import JobCreate, JobOut
from service.queue.service import MAX_ITEM_OFFSET, MAX_ITEMS_PAGE

router = APIRouter(tags=["jobs"])

_NOT_FOUND = {404: "Unknown or expired job (`job_not_found`)."}


@router.post(
    paths.JOBS,
    status_code=202,
    response_model=JobOut,
    summary="Submit a batch job",
    responses=error_responses(
        described={
            400: "Invalid body or Idempotency-Key (`invalid_request`, `url_invalid`).",
            403: "An item or callback URL points at a forbidden address (`url_forbidden`).",
            404: "Unknown model (`model_not_found`).",
            409: "Idempotency-Key reused with a different body (`idempotency_conflict`).",
            413: "Too many items (`too_large`).",
            429: "Queue full (`queue_full`) or this API key's backlog quota reached "
            "(`quota_exceeded`): retry after `Retry-After` seconds.",
            503: "Queue store unavailable (`queue_unavailable`).",
        }
    ),
)
async def create_job(
    body: JobCreate,
    request: Request,
    response: Response,
    jobs: JobsDep,
    principal: PrincipalDep,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Same key + same body returns the same job; another body gives 409.",
    ),
) -> JobOut:
    check_submission(request, body)
    job, created = await jobs.submit(body, idempotency_key, principal=principal)
    response.headers["Location"] = f"{paths.JOBS}/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job


@router.get(
    f"{paths.JOBS}/{{job_id}}",
    response_model=JobOut,
    summary="Job status, progress and a page of item results",
    responses=error_responses(described=_NOT_FOUND),
)
async def get_job(
    job_id: str,
    jobs: JobsDep,
    principal: PrincipalDep,
    offset: int = Query(0, ge=0, le=MAX_ITEM_OFFSET, description="First item index of the page."),
    limit: int = Query(100, ge=0, le=MAX_ITEMS_PAGE, description="Items per page (0: none)."),
) -> JobOut:
    return await jobs.get(job_id, offset=offset, limit=limit, principal=principal)


@router.get(
    f"{paths.JOBS}/{{job_id}}/results",
    summary="Final item results as JSON lines (one JobItemOut per line, in item order)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines."},
        **error_responses(described=_NOT_FOUND),
    },
)
async def job_results(job_id: str, jobs: JobsDep, principal: PrincipalDep) -> StreamingResponse:
    lines = await jobs.open_results(job_id, principal=principal)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.delete(
    f"{paths.JOBS}/{{job_id}}",
    response_model=JobOut,
    summary="Cancel the items that have not started",
    responses=error_responses(described=_NOT_FOUND | {409: "The job already ended (`conflict`)."}),
)
async def cancel_job(job_id: str, jobs: JobsDep, principal: PrincipalDep) -> JobOut:
    return await jobs.cancel(job_id, principal=principal)
