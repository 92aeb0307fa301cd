"""The Kubernetes manifests and Dockerfiles agree with the code they deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.api import create_app
from service.metrics import Metrics
from service.settings import Settings
from tests.deploy.manifests import REPO, render


def manifests() -> dict[str, dict[str, Any]]:
    """The gateway's objects as `kubectl apply -k k8s/` sends them, by kind."""
    return {
        doc["kind"]: doc
        for doc in render("")
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "gateway"
    }


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return manifests()


@pytest.fixture(scope="module")
def container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_probes_hit_routes_the_app_serves(container: dict[str, Any]) -> None:
    paths = set(create_app(Settings(model_dir=Path("/nonexistent"))).openapi()["paths"])
    probes = {
        k: container[k]["httpGet"]["path"]
        for k in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {
        "startupProbe": "/v2/health/ready",
        "readinessProbe": "/v2/health/ready",
        "livenessProbe": "/v2/health/live",
    }
    assert set(probes.values()) <= paths


def test_shutdown_budget_fits_the_termination_grace_period(
    docs: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    env = docs["ConfigMap"]["data"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    budget = (
        pre_stop
        + float(env["AVSERVE_DRAIN_DELAY_S"])
        + float(env["AVSERVE_SHUTDOWN_GRACE_S"])
        + float(env["AVSERVE_QUEUE__SHUTDOWN_GRACE_S"])
    )
    assert budget < docs["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_configmap_holds_only_valid_settings(
    docs: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    known = {f"AVSERVE_{name.upper()}" for name in Settings.model_fields}
    for group in ("batcher", "queue", "media", "fetch"):
        model = Settings.model_fields[group].annotation
        known |= {f"AVSERVE_{group.upper()}__{n.upper()}" for n in model.model_fields}  # type: ignore[union-attr]
    data = docs["ConfigMap"]["data"]
    assert set(data) <= known, set(data) - known
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # parses every value
    assert settings.runtime == data["AVSERVE_RUNTIME"]


def test_container_is_non_root_with_a_read_only_root(container: dict[str, Any]) -> None:
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (REPO / "docker" / dockerfile).read_text()
        assert "\nUSER 10001:10001\n" in text


def test_service_and_hpa_point_at_the_gateway(docs: dict[str, dict[str, Any]]) -> None:
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    exported = {m.name for m in Metrics().registry.collect()}
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            assert metric["pods"]["metric"]["name"] in exported
