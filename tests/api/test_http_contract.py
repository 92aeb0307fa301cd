"""The HTTP contract every route keeps: one error shape, request ids, typed statuses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from service.errors import HTTP_STATUS, AvserveError, MediaError
from tests.api.helpers import RecordingClassifier, serve_in_process


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    assert "Traceback" not in resp.text
    return dict(body["error"])


async def test_a_request_id_is_generated_and_echoed(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (_, client):
        first = await client.get("/v2/health/live")
        second = await client.get("/v2/health/live")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_client_request_id_is_kept_and_reported_in_errors(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (_, client):
        resp = await client.get("/v1/models/absent", headers={"X-Request-ID": "trace-42.a:b"})
    assert resp.headers["x-request-id"] == "trace-42.a:b"
    err = assert_error(resp, 404, "model_not_found")
    assert err["request_id"] == "trace-42.a:b"


async def test_an_unsafe_client_request_id_is_replaced(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (_, client):
        resp = await client.get("/v2/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])


async def test_unknown_routes_and_methods_answer_in_the_error_shape(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (_, client):
        assert_error(await client.get("/v1/nothing-here"), 404, "not_found")
        assert_error(await client.delete("/v1/models"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"url": "not a url"}, {}),
        ({"url": "http://example.com/v.mp4", "k": 0}, {}),
        ({"url": "http://example.com/v.mp4", "policy": "psychic"}, {}),
        ({"url": "http://example.com/v.mp4", "surprise": 1}, {}),
        ({}, {}),
        (None, {"content-type": "application/json"}),
        (None, {"content-type": "text/plain"}),
    ],
    ids=["bad-url", "k-zero", "bad-policy", "unknown-field", "no-url", "not-json", "wrong-type"],
)
async def test_malformed_classify_requests_are_invalid_request(
    make_settings: Any, body: Any, headers: dict[str, str]
) -> None:
    classifier = RecordingClassifier()
    async with serve_in_process(make_settings(), classifier) as (_, client):
        if body is None:
            resp = await client.post("/v1/classify", content=b"{nope", headers=headers)
        else:
            resp = await client.post("/v1/classify", json=body)
    assert_error(resp, 400, "invalid_request")
    assert classifier.calls == []


@pytest.mark.parametrize(
    "error",
    [
        MediaError("no video here", code="no_video_stream"),
        MediaError("what is this", code="unsupported_container"),
        MediaError("too long", code="too_long"),
        MediaError("slow decode", code="timeout"),
        AvserveError("busy", code="overloaded", retry_after_s=2.2),
        AvserveError("late", code="deadline_exceeded"),
        AvserveError("who", code="model_not_found"),
    ],
    ids=lambda e: e.code,
)
async def test_typed_pipeline_errors_map_to_their_status(
    make_settings: Any, error: AvserveError
) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier(error=error)) as (_, client):
        resp = await client.post("/v1/classify", files={"file": ("v.mp4", b"video bytes")})
    err = assert_error(resp, HTTP_STATUS[error.code], error.code)
    assert err["message"] == error.message
    if error.code == "overloaded":
        assert resp.headers["retry-after"] == "3"


async def test_an_unexpected_exception_is_a_bare_500_without_details(make_settings: Any) -> None:
    class Exploding(RecordingClassifier):
        async def classify(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("secret internals /etc/passwd")

    async with serve_in_process(make_settings(), Exploding()) as (_, client):
        resp = await client.post("/v1/classify", files={"file": ("v.mp4", b"x")})
    err = assert_error(resp, 500, "internal")
    assert "secret" not in resp.text
    assert err["message"] == "internal server error"


async def test_openapi_documents_the_routes_and_both_classify_bodies(make_settings: Any) -> None:
    async with serve_in_process(make_settings()) as (_, client):
        schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/v1/classify",
        "/v1/models",
        "/v1/models/{name}",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}/ready",
        "/metrics",
    ):
        assert path in paths
    content = paths["/v1/classify"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert "file" in content["multipart/form-data"]["schema"]["required"]
    assert "url" in content["application/json"]["schema"]["required"]
    responses = paths["/v1/classify"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422", "429", "503", "504"} <= set(responses)
