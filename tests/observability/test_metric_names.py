"""deploy/observability/ reads only metrics the service exports, under their scraped names."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.observability.exported import (
    EXTERNAL,
    OBSERVABILITY,
    REPO,
    exported_families,
    grafana_query_metric_names,
    query_metric_names,
    series_names,
)

RUNBOOK = REPO / "docs" / "operations.md"


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return series_names(asyncio.run(exported_families()))


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OBSERVABILITY / "prometheusrule.yaml").read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text()))


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, query) for every panel target, templating query and annotation."""
    dash = dashboard()
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            yield f"variable {var['name']}", query["query"] if isinstance(query, dict) else query
    for annotation in dash["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']}", annotation["expr"]


def adapter_rules() -> list[dict[str, Any]]:
    return list(
        yaml.safe_load((OBSERVABILITY / "prometheus-adapter-rules.yaml").read_text())["rules"]
    )


def hpa_pod_metric_names() -> set[str]:
    """The Pods metrics every HorizontalPodAutoscaler under k8s/ asks for."""
    names: set[str] = set()
    for path in sorted((REPO / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "HorizontalPodAutoscaler":
                for metric in doc["spec"].get("metrics", []):
                    if metric["type"] == "Pods":
                        names.add(metric["pods"]["metric"]["name"])
    return names


# -- the name extraction itself ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "names"),
    [
        ('sum(rate(a_total{x="1"}[5m])) / sum(rate(a_total[5m])) > 0.05', {"a_total"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(b_seconds_bucket[$__rate_interval])))",
            {"b_seconds_bucket"},
        ),
        ('max(c{lane=~"high|batch"}) > 0 and on() max(d) == 0', {"c", "d"}),
        ('{__name__="e", pod!=""} offset 5m', {"e"}),
        ("max_over_time(f[1h:5m]) unless g", {"f", "g"}),
        ('sum(rate(h{route="sum(rate(not_a_metric[5m]))"}[5m])) by (pod)', {"h"}),
        ("sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)", {"i"}),
        ("vector(1) + time()", set()),
    ],
)
def test_query_metric_names_finds_every_selected_metric_and_nothing_else(
    query: str, names: set[str]
) -> None:
    assert query_metric_names(query, series="i") == names


def test_a_query_with_a_syntax_error_is_rejected() -> None:
    with pytest.raises(ValueError):
        query_metric_names("sum(rate(a_total[5m])")


def test_label_values_queries_name_their_metric() -> None:
    assert grafana_query_metric_names("label_values(avserve_model_info, namespace)") == {
        "avserve_model_info"
    }


def test_families_map_to_the_series_names_prometheus_stores(exported: set[str]) -> None:
    assert "avserve_http_requests_total" in exported
    assert "avserve_http_requests" not in exported  # a counter is only scraped with _total
    assert {f"avserve_http_request_duration_seconds{s}" for s in ("_bucket", "_sum", "_count")} <= (
        exported
    )
    assert "avserve_http_request_duration_seconds" not in exported
    assert "avserve_jobs_queue_lag" in exported  # from the queue-stats collector


# -- the artefacts ---------------------------------------------------------------------------------
def test_every_metric_the_alerts_use_is_exported(exported: set[str]) -> None:
    rules = alert_rules()
    assert len(rules) >= 6
    used = {name for rule in rules for name in query_metric_names(rule["expr"])}
    assert used - EXTERNAL <= exported, sorted(used - EXTERNAL - exported)
    assert any(n.startswith("avserve_") for n in used)


def test_every_metric_the_dashboard_uses_is_exported(exported: set[str]) -> None:
    used: dict[str, set[str]] = {}
    for where, query in dashboard_queries():
        used[where] = grafana_query_metric_names(query)
        assert used[where], f"{where} selects no metric"
    unknown = {w: n - EXTERNAL - exported for w, n in used.items() if n - EXTERNAL - exported}
    assert not unknown, unknown


def test_every_metric_the_adapter_rules_use_is_exported(exported: set[str]) -> None:
    for rule in adapter_rules():
        (series,) = query_metric_names(rule["seriesQuery"])
        assert series in exported
        assert query_metric_names(rule["metricsQuery"], series=series) == {series}


def test_the_adapter_exposes_exactly_the_pod_metrics_the_hpa_asks_for() -> None:
    exposed = set()
    for rule in adapter_rules():
        (series,) = query_metric_names(rule["seriesQuery"])
        assert re.search(rule["name"]["matches"], series), rule["name"]
        exposed.add(re.sub(rule["name"]["matches"], rule["name"]["as"], series))
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
        assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
    wanted = hpa_pod_metric_names()
    assert wanted, "no HorizontalPodAutoscaler with Pods metrics under k8s/"
    assert exposed == wanted


def test_the_checks_catch_a_metric_the_service_does_not_export(exported: set[str]) -> None:
    renamed = "sum(rate(avserve_requests_total[5m]))"  # a former name
    assert query_metric_names(renamed) - EXTERNAL - exported == {"avserve_requests_total"}


def test_every_alert_says_what_it_means_and_links_its_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', runbook))
    names = []
    for rule in alert_rules():
        names.append(rule["alert"])
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), rule["alert"]
        path, _, anchor = notes["runbook_url"].partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no <a id={anchor!r}> in docs/operations.md"
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert f"### {rule['alert']}" in runbook, rule["alert"]
    assert len(names) == len(set(names))
    # The list: error rate, p99 latency, queue lag growing, dead letters, no ready
    # replicas, decode timeouts.
    for wanted in ("ErrorRate", "LatencyP99", "LagGrowing", "DeadLetters", "NoReadyReplicas"):
        assert any(wanted in n for n in names), wanted
    assert "AvserveDecodeTimeouts" in names


def test_every_alert_the_runbook_documents_exists() -> None:
    documented = set(re.findall(r"^### (Avserve\w+)$", RUNBOOK.read_text(), flags=re.MULTILINE))
    assert documented == {rule["alert"] for rule in alert_rules()}


def test_the_dashboard_is_well_formed() -> None:
    dash = dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
        if panel["type"] != "row":
            assert refs and panel["datasource"]["uid"] == "${datasource}", panel["title"]
    assert {v["name"] for v in dash["templating"]["list"]} >= {"datasource", "namespace"}


def test_the_observability_kustomization_lists_its_files() -> None:
    kust = yaml.safe_load((OBSERVABILITY / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    listed |= {f for gen in kust.get("configMapGenerator", []) for f in gen["files"]}
    for name in listed:
        assert (OBSERVABILITY / name).is_file(), name
    assert {"prometheusrule.yaml", "grafana-dashboard.json"} <= listed
