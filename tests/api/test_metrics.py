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
        for s in fams["avserve_requests"].samples
        if s.name == "avserve_requests_total"
    }
    assert requests[("/v1/models", "200")] == 1
    assert requests[("/v1/models/{name}", "404")] == 1
    errors = {
        s.labels["code"]: s.value
        for s in fams["avserve_errors"].samples
        if s.name.endswith("_total")
    }
    assert errors == {"model_not_found": 1, "invalid_request": 1}
    (info,) = fams["avserve_model_info"].samples
    assert info.labels == {"name": "tiny", "version": "0.1", "runtime": "eager", "device": "cpu"}
    assert fams["avserve_in_flight_requests"].samples[0].value == 0
    for name in (
        "avserve_request_duration_seconds",
        "avserve_stage_duration_seconds",
        "avserve_batch_size",
        "avserve_inference_count",
        "avserve_inference_exec_count",
        "avserve_queue_depth",
        "avserve_queue_wait_seconds",
        "avserve_decode_seconds_per_video_second",
        "avserve_audio_absent",
    ):
        assert name in fams, name


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe_stage("probe", 0.25)
    a.observe_video(duration_s=10.0, decode_s=2.0, audio_present=False)
    a.error("undecodable")
    assert (
        a.registry.get_sample_value("avserve_stage_duration_seconds_count", {"stage": "probe"}) == 1
    )
    assert a.registry.get_sample_value("avserve_audio_absent_total") == 1
    assert a.registry.get_sample_value("avserve_decode_seconds_per_video_second_sum") == 0.2
    assert a.registry.get_sample_value("avserve_errors_total", {"code": "undecodable"}) == 1
    assert b.registry.get_sample_value("avserve_audio_absent_total") == 0
