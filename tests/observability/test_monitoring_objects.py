"""deploy/observability renders with kustomize into objects a cluster would accept: the
PrometheusRule and PodMonitor against the Prometheus Operator's CRD schemas (vendored in
crds/, see its README), the dashboard ConfigMap against Kubernetes' own."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import kubectl, strict_crd_schema
from tests.observability.exported import OBSERVABILITY

CRDS = Path(__file__).resolve().parent / "crds"
Obj = dict[str, Any]


@functools.cache
def rendered() -> tuple[Obj, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(OBSERVABILITY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Obj]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["spec"]
        for version in spec["versions"]:
            if version["served"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = strict_crd_schema(version["schema"]["openAPIV3Schema"])
    return schemas


def errors(obj: Obj) -> list[str]:
    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        try:
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [str(exc)]
        return []
    return [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(obj)
    ]


def test_the_observability_objects_render_and_validate_strictly() -> None:
    objs = rendered()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["ConfigMap", "PodMonitor", "PrometheusRule"]
    for obj in objs:
        assert errors(obj) == [], obj["kind"]
        assert obj["metadata"]["namespace"] == "avserve"


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    (rule,) = [o for o in rendered() if o["kind"] == "PrometheusRule"]
    broken = yaml.safe_load(yaml.safe_dump(rule))
    broken["spec"]["groups"][0]["rules"][0]["expression"] = "up"
    assert errors(broken)


def test_the_dashboard_configmap_carries_the_dashboard_for_grafanas_sidecar() -> None:
    (cm,) = [o for o in rendered() if o["kind"] == "ConfigMap"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (
        cm["data"]["grafana-dashboard.json"]
        == (OBSERVABILITY / "grafana-dashboard.json").read_text()
    )


@pytest.mark.parametrize("port", ["http", "metrics"])
def test_the_podmonitor_scrapes_ports_the_deployments_name(port: str) -> None:
    (monitor,) = [o for o in rendered() if o["kind"] == "PodMonitor"]
    assert port in {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    named = set()
    for path in (OBSERVABILITY.parents[1] / "k8s").rglob("*deployment*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                labels = doc["spec"]["template"]["metadata"]["labels"]
                selector = monitor["spec"]["selector"]["matchLabels"]
                assert selector.items() <= labels.items(), path
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    named |= {p.get("name") for p in c.get("ports", [])}
    assert port in named
