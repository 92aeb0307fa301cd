"""POST /v1/jobs through the whole gateway: what can never succeed is refused at submit (with
the item index), and a full-size job of real URLs fits under the route's body cap."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import RecordingClassifier, serve_in_process
from tests.api.test_http_contract import assert_error

PUBLIC = "http://videos.example/clip.mp4"


def job(urls: list[str], **extra: Any) -> dict[str, Any]:
    return {"items": [{"url": u} for u in urls], **extra}


def no_worker(make_settings: Any, **overrides: Any) -> Any:
    return make_settings(queue={"embedded_worker": False}, **overrides)


@pytest.mark.parametrize(
    ("url", "code", "status"),
    [
        ("http://10.1.2.3/v.mp4", "url_forbidden", 403),
        ("http://127.1/v.mp4", "url_forbidden", 403),
        ("http://2130706433/v.mp4", "url_forbidden", 403),
        ("http://[::1]:8080/v.mp4", "url_forbidden", 403),
        ("http://169.254.169.254/latest/meta-data", "url_forbidden", 403),
        ("http://user:secret@videos.example/v.mp4", "url_invalid", 400),
    ],
)
async def test_items_that_can_never_be_fetched_are_refused_with_their_index(
    make_settings: Any, url: str, code: str, status: int
) -> None:
    async with serve_in_process(no_worker(make_settings), RecordingClassifier()) as (app, c):
        resp = await c.post("/v1/jobs", json=job([PUBLIC, PUBLIC, url]))
        error = assert_error(resp, status, code)
        assert "items[2]" in error["message"]
        assert "secret" not in error["message"]
        stats = await app.state.jobs.backend.stats()
        assert stats.counters.get("jobs_submitted", 0) == 0  # nothing was queued


async def test_a_job_naming_an_unknown_model_is_refused(make_settings: Any) -> None:
    async with serve_in_process(no_worker(make_settings), RecordingClassifier()) as (_, c):
        resp = await c.post("/v1/jobs", json=job([PUBLIC], model="no-such-model"))
        assert_error(resp, 404, "model_not_found")
        assert (await c.post("/v1/jobs", json=job([PUBLIC], model="tiny"))).status_code == 202


async def test_allow_listed_private_networks_may_be_submitted(make_settings: Any) -> None:
    settings = no_worker(make_settings, fetch={"allow_private_networks": ["10.0.0.0/8"]})
    async with serve_in_process(settings, RecordingClassifier()) as (_, c):
        assert (await c.post("/v1/jobs", json=job(["http://10.1.2.3/v.mp4"]))).status_code == 202


async def test_a_job_of_max_items_real_urls_fits_the_body_cap(make_settings: Any) -> None:
    # ~240-character presigned URLs: 10,000 of them are ~2.6 MB of JSON, over max_body_bytes.
    sig = "X-Amz-Signature=" + "a" * 64 + "&X-Amz-Credential=" + "b" * 80
    urls = [f"https://bucket.s3.example.com/videos/{i:06d}.mp4?{sig}" for i in range(10_000)]
    assert min(map(len, urls)) >= 200
    async with serve_in_process(no_worker(make_settings), RecordingClassifier()) as (_, c):
        resp = await c.post("/v1/jobs", json=job(urls))
        assert resp.status_code == 202, resp.text[:300]
        assert resp.json()["progress"]["total"] == 10_000
        # Other routes keep the small cap.
        big = await c.post("/v1/classify", json={"url": PUBLIC, "pad": "x" * 2_000_000})
        assert_error(big, 413, "too_large")
