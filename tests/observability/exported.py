"""What the service exports, and which metric names a PromQL query reads.

``exported_families`` builds the registries as the gateway does (``Metrics`` plus the job
service registered on it, embedded worker included: ``service.wiring.start_services``) with
one queue-stats snapshot taken, so the collector-backed job-queue families appear too.
``series_names`` turns families into the series Prometheus stores (a counter ``x`` is
scraped as ``x_total``, a histogram as ``x_bucket``/``x_sum``/``x_count``), the names a
query must use. ``query_metric_names`` parses a query with a real PromQL parser (a syntax
error fails the test) after putting sample values in Grafana's and prometheus-adapter's
placeholders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client import Metric

from service.metrics import Metrics
from service.queue import QueueConfig, build_job_service

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"

# Series the rules and dashboard read that other exporters provide.
EXTERNAL = frozenset(
    {
        "kube_deployment_status_replicas_available",  # kube-state-metrics
        "ALERTS",  # Prometheus itself: the dashboard's alert annotations
    }
)

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}

# Grafana's interval variables and prometheus-adapter's Go-template fields, with sample values.
_PLACEHOLDERS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "<<.LabelMatchers>>": 'namespace="avserve",pod=~"a|b"',
    "<<.GroupBy>>": "pod",
}


async def _noop(url: str, options: Any) -> dict[str, Any]:
    return {}


async def exported_families() -> list[Metric]:
    metrics = Metrics()
    jobs = build_job_service(QueueConfig(), _noop, registry=metrics.registry)
    assert jobs.worker is not None  # the embedded worker's own instruments are registered
    await jobs._stats.refresh()  # the queue-wide collector yields only once it has a snapshot
    return list(metrics.registry.collect())


def series_names(families: list[Metric]) -> set[str]:
    return {f.name + suffix for f in families for suffix in _SUFFIXES[f.type]}


def query_metric_names(query: str, series: str | None = None) -> set[str]:
    """Metric names a PromQL query selects (``series`` fills the adapter's ``<<.Series>>``)."""
    for placeholder, value in _PLACEHOLDERS.items():
        query = query.replace(placeholder, value)
    if series is not None:
        query = query.replace("<<.Series>>", series)
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
                    names.add(m.value)

    promql_parser.walk(promql_parser.parse(query), visit)
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$")


def grafana_query_metric_names(query: str) -> set[str]:
    """A panel target or a templating query (``label_values(selector, label)`` included)."""
    m = _LABEL_VALUES.match(query)
    return query_metric_names(m.group(1) if m else query)
