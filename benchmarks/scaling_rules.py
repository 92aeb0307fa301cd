"""The autoscalers' arithmetic, with their targets read from the shipped manifests.

``bench_scaling`` feeds live signal values through these: the gateway HPA (Pods metrics with
``AverageValue`` targets, plus CPU utilisation) and the worker's KEDA ``ScaledObject``
(``redis-streams`` triggers on lag or pending entries). Only the replica *recommendation* is
computed; the HPA ``behavior`` (stabilisation windows, rate policies) that smooths it in a
cluster is not replayed.

Formulas (Kubernetes HPA and KEDA documentation):
- HPA, per metric: ``desired = ceil(current * value / target)`` where ``value`` is the per-pod
  average; a ratio within 10 % of 1 keeps ``current`` (the controller's tolerance). The largest
  recommendation over the metrics wins, clamped to ``[minReplicas, maxReplicas]``.
- KEDA, per trigger: ``ceil(value / threshold)`` (KEDA hands the HPA an ``AverageValue`` of
  ``threshold``, so the replica count cancels out); the largest wins, clamped to
  ``[minReplicaCount, maxReplicaCount]``; with every trigger inactive (value at or below its
  activation threshold) the workload sits at ``minReplicaCount``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HPA_TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance default


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number (``"500m"`` -> 0.5, ``"2"`` -> 2.0)."""
    s = str(text).strip()
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)


@dataclass(frozen=True)
class HpaRules:
    min_replicas: int
    max_replicas: int
    pod_targets: Mapping[str, float]  # metric name -> per-pod AverageValue target
    cpu_utilization: float | None  # percent of the CPU request, or None
    cpu_request: float | None  # cores requested by the gateway container

    def desired(self, current: int, totals: Mapping[str, float], cpu_cores: float | None) -> int:
        """Recommendation for ``current`` pods sharing the load whose sums are ``totals``
        (and ``cpu_cores`` of CPU time per second, all pods together)."""
        wanted = [self.min_replicas]
        for name, target in self.pod_targets.items():
            if name in totals:
                wanted.append(_hpa_step(current, totals[name] / current, target))
        if self.cpu_utilization and self.cpu_request and cpu_cores is not None:
            used_pct = 100 * cpu_cores / current / self.cpu_request
            wanted.append(_hpa_step(current, used_pct, self.cpu_utilization))
        return min(max(wanted), self.max_replicas)


def _hpa_step(current: int, value: float, target: float) -> int:
    ratio = value / target
    if abs(ratio - 1) <= HPA_TOLERANCE:
        return current
    return math.ceil(current * ratio)


@dataclass(frozen=True)
class KedaTrigger:
    stream: str  # the stream key without the "<prefix>:" part ("stream:batch")
    kind: str  # "lag" | "pending"
    threshold: float
    activation: float


@dataclass(frozen=True)
class KedaRules:
    min_replicas: int
    max_replicas: int
    triggers: tuple[KedaTrigger, ...]

    def desired(self, lag: Mapping[str, int], pending: Mapping[str, int]) -> int:
        """Recommendation from each stream's group lag and pending count (keys as in
        ``KedaTrigger.stream``)."""
        active = False
        wanted = self.min_replicas
        for t in self.triggers:
            value = (lag if t.kind == "lag" else pending).get(t.stream, 0)
            active |= value > t.activation
            wanted = max(wanted, math.ceil(value / t.threshold))
        if not active:
            return self.min_replicas
        return min(wanted, self.max_replicas)


def rendered_manifests(repo: Path) -> tuple[list[dict[str, Any]], str]:
    """The objects ``kubectl apply -k k8s/`` would create, and how they were read: rendered by
    ``kubectl kustomize`` when kubectl is installed, else the files of ``k8s/base``."""
    # The dev extra installs kubectl into the virtual environment, which may not be on PATH.
    kubectl = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    if kubectl:
        out = subprocess.run(
            [kubectl, "kustomize", str(repo / "k8s")], capture_output=True, text=True, timeout=60
        )
        if out.returncode == 0:
            return [d for d in yaml.safe_load_all(out.stdout) if d], "kubectl kustomize k8s/"
    docs = []
    for path in sorted((repo / "k8s" / "base").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs, "k8s/base/*.yaml"


def _one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    for d in docs:
        labels = d.get("metadata", {}).get("labels", {})
        if d.get("kind") == kind and labels.get("app.kubernetes.io/component") == component:
            return d
    raise LookupError(f"no {kind} of component {component!r} in the manifests")


def gateway_hpa(docs: list[dict[str, Any]]) -> HpaRules:
    spec = _one(docs, "HorizontalPodAutoscaler", "gateway")["spec"]
    pods: dict[str, float] = {}
    cpu = None
    for m in spec.get("metrics", []):
        if m["type"] == "Pods":
            pods[m["pods"]["metric"]["name"]] = quantity(m["pods"]["target"]["averageValue"])
        elif m["type"] == "Resource" and m["resource"]["name"] == "cpu":
            cpu = float(m["resource"]["target"]["averageUtilization"])
    deployment = _one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    request = deployment["containers"][0].get("resources", {}).get("requests", {}).get("cpu")
    return HpaRules(
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        pod_targets=pods,
        cpu_utilization=cpu,
        cpu_request=quantity(request) if request is not None else None,
    )


def worker_keda(docs: list[dict[str, Any]]) -> KedaRules:
    spec = _one(docs, "ScaledObject", "worker")["spec"]
    triggers = []
    for t in spec["triggers"]:
        if t["type"] != "redis-streams":
            continue
        md = t["metadata"]
        stream = md["stream"].split(":", 1)[1]  # drop the key prefix ("avserve:")
        if "lagCount" in md:
            kind, threshold = "lag", float(md["lagCount"])
        else:
            kind, threshold = "pending", float(md["pendingEntriesCount"])
        triggers.append(
            KedaTrigger(stream, kind, threshold, float(md.get("activationLagCount", 0)))
        )
    return KedaRules(
        min_replicas=int(spec.get("minReplicaCount", 0)),
        max_replicas=int(spec.get("maxReplicaCount", 100)),
        triggers=tuple(triggers),
    )
