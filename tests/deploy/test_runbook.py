"""docs/operations.md stays true to the manifests and settings it describes."""

from __future__ import annotations

import asyncio
import re

import kubernetes_validate

from tests.deploy.manifests import OLDEST_KUBERNETES, REPO, one, render, setting_env_names
from tests.observability.exported import exported_families, series_names

RUNBOOK = REPO / "docs" / "operations.md"


def _anchors(markdown: str) -> set[str]:
    """Explicit <a id> anchors and GitHub's heading anchors."""
    ids = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE):
        ids.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return ids


def test_every_setting_the_runbook_names_is_one_the_service_reads() -> None:
    named = set(re.findall(r"AVSERVE_[A-Z0-9_]+", RUNBOOK.read_text()))
    assert named
    assert named <= setting_env_names(), named - setting_env_names()


def test_every_link_in_the_runbook_reaches_a_file_and_anchor() -> None:
    text = RUNBOOK.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        target = RUNBOOK if not path else (RUNBOOK.parent / path).resolve()
        assert target.is_file(), link
        if anchor:
            assert anchor in _anchors(target.read_text()), link


def test_the_runbook_quotes_the_autoscaling_and_shutdown_numbers_the_manifests_set() -> None:
    text = " ".join(RUNBOOK.read_text().split())
    newest = ".".join(kubernetes_validate.latest_version().split(".")[:2])  # 1.37.0 -> 1.37
    assert f"Kubernetes {OLDEST_KUBERNETES} and {newest} OpenAPI schemas" in text
    objs = render("overlays/cpu")
    hpa = one(objs, "HorizontalPodAutoscaler", "avserve-gateway")["spec"]
    targets = [m["pods"]["target"]["averageValue"] for m in hpa["metrics"] if m["type"] == "Pods"]
    assert f"target average {targets[0]} per pod" in text
    assert f"target average {targets[1]} per pod" in text
    assert f"({hpa['minReplicas']}–{hpa['maxReplicas']};" in text
    scaled = one(objs, "ScaledObject", "avserve-worker")["spec"]
    lags = {
        t["metadata"]["stream"]: t["metadata"]["lagCount"]
        for t in scaled["triggers"]
        if "lagCount" in t["metadata"]
    }
    assert f"`avserve:stream:batch` with target {lags['avserve:stream:batch']}" in text
    assert f"`avserve:stream:high` with target {lags['avserve:stream:high']}" in text
    assert f"within {scaled['minReplicaCount']}–{scaled['maxReplicaCount']}" in text
    for name in ("avserve-gateway", "avserve-worker"):
        pod = one(objs, "Deployment", name)["spec"]["template"]["spec"]
        assert f"terminationGracePeriodSeconds: {pod['terminationGracePeriodSeconds']}" in text


def test_every_metric_the_runbook_names_is_one_the_service_exports() -> None:
    families = asyncio.run(exported_families())
    exported = series_names(families) | {f.name for f in families}
    named = set(re.findall(r"\bavserve_[a-z0-9_]+", RUNBOOK.read_text()))
    assert named
    assert named <= exported, named - exported
