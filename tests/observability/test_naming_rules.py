"""The exported metrics follow one naming scheme (docs/metrics.md) and docs/metrics.md lists
exactly them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Metric

from service.queue import QueueConfig
from service.queue.memory_backend import MemoryBackend
from service.queue.metrics import StatsCache, WorkerMetrics
from tests.observability.exported import REPO, exported_families, series_names

SCHEME = re.compile(r"^avserve_(http|pipeline|batcher|jobs)_[a-z][a-z0-9_]*[a-z0-9]$")
UNITS = ("seconds", "milliseconds", "bytes", "ratio", "percent")
METRICS_DOC = REPO / "docs" / "metrics.md"


@pytest.fixture(scope="module")
def families() -> dict[str, Metric]:
    return {f.name: f for f in asyncio.run(exported_families())}


def label_names(family: Metric) -> set[str]:
    """Label names of a family, sampled or not (an instrument with labels has no samples
    until first used, so its declared names are read from the instrument)."""
    names = {k for s in family.samples for k in s.labels if k not in ("le", "quantile")}
    return names | set(_declared_labels().get(family.name, ()))


def _declared_labels() -> dict[str, tuple[str, ...]]:
    from service.metrics import Metrics

    registry = CollectorRegistry()
    WorkerMetrics(registry, QueueConfig())
    declared: dict[str, tuple[str, ...]] = {}
    for owner in (Metrics().__dict__.values(), _instruments(registry)):
        for inst in owner:
            if hasattr(inst, "_labelnames") and hasattr(inst, "_name"):
                declared[inst._name] = tuple(inst._labelnames)
    return declared


def _instruments(registry: CollectorRegistry) -> list[Any]:
    return list(registry._collector_to_names)  # prometheus_client keeps no public list


def test_every_family_has_a_subsystem_prefix(families: dict[str, Metric]) -> None:
    bad = [n for n in families if not SCHEME.match(n) and n != "avserve_model_info"]
    assert not bad, bad
    subsystems = {n.split("_")[1] for n in families}
    assert subsystems == {"http", "pipeline", "batcher", "jobs", "model"}


def test_units_are_the_last_word_and_only_where_the_value_has_them(
    families: dict[str, Metric],
) -> None:
    for name, family in families.items():
        words = name.split("_")
        for unit in UNITS:
            if unit in words[:-1]:
                pytest.fail(f"{name}: unit {unit!r} is not the last word")
        assert "milliseconds" not in words and "percent" not in words, name  # base units
        if words[-1] == "seconds":
            assert family.type in ("histogram", "gauge", "summary"), name
            assert "per" not in words, name  # a rate is a ratio, not seconds
    ratio = families["avserve_pipeline_decode_realtime_ratio"]
    assert ratio.type == "histogram" and "divided by" in ratio.documentation


def test_no_family_name_ends_like_a_series_suffix(families: dict[str, Metric]) -> None:
    # A counter family "x_count" would be scraped as x_count_total and clash with histograms.
    for name in families:
        assert not re.search(r"_(total|count|sum|bucket|created)$", name), name


def test_batcher_and_job_queue_label_their_lanes_alike(families: dict[str, Metric]) -> None:
    batcher = label_names(families["avserve_batcher_queue_depth"])
    jobs = label_names(families["avserve_jobs_queue_depth"])
    assert batcher - {"model"} == jobs == {"lane"}
    for name, family in families.items():
        assert "priority" not in label_names(family), name
        if name.startswith(("avserve_batcher_", "avserve_jobs_")):
            assert label_names(family) <= {"model", "lane", "outcome", "state", "code"}, name


def test_errors_are_counted_by_code(families: dict[str, Metric]) -> None:
    for name in (
        "avserve_http_errors",
        "avserve_jobs_item_errors",
        "avserve_pipeline_stage_errors",
    ):
        assert families[name].type == "counter", name
        assert "code" in label_names(families[name]), name


def test_request_count_and_duration_share_their_labels(families: dict[str, Metric]) -> None:
    count = label_names(families["avserve_http_requests"])
    duration = label_names(families["avserve_http_request_duration_seconds"])
    assert count == duration == {"route", "method", "status"}


def test_the_worker_process_exports_the_gateway_names() -> None:
    """``avserve worker`` builds its registry itself (service.queue.runner)."""
    registry = CollectorRegistry()
    config = QueueConfig()
    WorkerMetrics(registry, config)
    stats = StatsCache(MemoryBackend(config), config.metrics_interval_s)
    registry.register(stats.collector(config))
    asyncio.run(stats.refresh())
    worker = {f.name for f in registry.collect()}
    gateway = {f.name for f in asyncio.run(exported_families())}
    assert worker and worker <= gateway, worker - gateway


def test_docs_metrics_lists_exactly_the_exported_series(families: dict[str, Metric]) -> None:
    text = METRICS_DOC.read_text().split("## Former names")[0]
    documented = set(re.findall(r"^\| `(avserve_[a-z0-9_]+)`", text, flags=re.MULTILINE))
    expected = {name + ("_total" if f.type == "counter" else "") for name, f in families.items()}
    assert documented == expected, (documented - expected, expected - documented)
    assert documented <= series_names(list(families.values())) | set(families)
    for name, family in families.items():
        assert family.documentation.strip(), name
