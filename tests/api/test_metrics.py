"""Prometheus exposition: names, labels, per-app registries."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from service.metrics import Metrics
from tests.api.helpers import RecordingClassifier, serve_in_process


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_metrics_expose_requests_errors_in_flight_and_model_info(make_settings: Any) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (_, client):
        await client.get("/v1/models")
        await client.get("/v1/models/absent")
        await client.post("/v1/classify", json={"url": "nope"})
        text = (await client.get("/metrics")).text
    fams = families(text)
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in fams["avserve_http_requests"].samples
        if s.name == "avserve_http_requests_total"
    }
    assert requests[("/v1/models", "200")] == 1
    assert requests[("/v1/models/{name}", "404")] == 1
    errors = {
        s.labels["code"]: s.value
        for s in fams["avserve_http_errors"].samples
        if s.name.endswith("_total")
    }
    assert errors == {"model_not_found": 1, "invalid_request": 1}
    (info,) = fams["avserve_model_info"].samples
    assert info.labels == {"name": "tiny", "version": "0.1", "runtime": "eager", "device": "cpu"}
    assert fams["avserve_http_requests_in_flight"].samples[0].value == 0
    for name in (
        "avserve_http_request_duration_seconds",
        "avserve_pipeline_stage_duration_seconds",
        "avserve_batcher_batch_size",
        "avserve_batcher_clips",
        "avserve_batcher_batches",
        "avserve_batcher_queue_depth",
        "avserve_batcher_queue_wait_seconds",
        "avserve_pipeline_decode_realtime_ratio",
        "avserve_pipeline_audio_absent",
    ):
        assert name in fams, name


async def test_request_durations_are_labelled_with_the_status_code(make_settings: Any) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (_, client):
        assert (await client.get("/v1/models")).status_code == 200
        assert (await client.get("/v1/models/absent")).status_code == 404
        assert (await client.get("/v1/models/absent")).status_code == 404
        text = (await client.get("/metrics")).text
    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families(text)["avserve_http_request_duration_seconds"].samples
        if s.name == "avserve_http_request_duration_seconds_count"
    }
    assert counts[("/v1/models", "GET", "200")] == 1
    assert counts[("/v1/models/{name}", "GET", "404")] == 2
    assert ("/v1/models/{name}", "GET", "200") not in counts


def test_stage_errors_are_counted_by_stage_and_code() -> None:
    m = Metrics()
    m.observe_stage_error("clip_decode", "timeout")
    m.observe_stage_error("clip_decode", "timeout")
    m.observe_stage_error("probe", "undecodable")
    value = m.registry.get_sample_value
    labels = {"stage": "clip_decode", "code": "timeout"}
    assert value("avserve_pipeline_stage_errors_total", labels) == 2
    assert (
        value("avserve_pipeline_stage_errors_total", {"stage": "probe", "code": "undecodable"}) == 1
    )


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe_stage("probe", 0.25)
    a.observe_video(duration_s=10.0, decode_s=2.0, audio_present=False)
    a.error("undecodable")
    assert (
        a.registry.get_sample_value(
            "avserve_pipeline_stage_duration_seconds_count", {"stage": "probe"}
        )
        == 1
    )
    assert a.registry.get_sample_value("avserve_pipeline_audio_absent_total") == 1
    assert a.registry.get_sample_value("avserve_pipeline_decode_realtime_ratio_sum") == 0.2
    assert a.registry.get_sample_value("avserve_http_errors_total", {"code": "undecodable"}) == 1
    assert b.registry.get_sample_value("avserve_pipeline_audio_absent_total") == 0
