"""k8s/: every overlay renders, every object passes its schema, and one apply is the whole
service (gateway, workers, autoscalers, policies), wired to itself."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.settings import Settings
from tests.deploy.manifests import (
    K8S,
    OLDEST_KUBERNETES,
    OPERATOR_SECRETS,
    OVERLAYS,
    REPO,
    Obj,
    containers,
    find,
    one,
    render,
    schema_errors,
    setting_env_names,
)

TARGETS = ("", *(f"overlays/{o}" for o in OVERLAYS))  # "" = `kubectl apply -k k8s/`


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pods_selected(objs: list[Obj], selector: dict[str, str]) -> list[str]:
    return [
        d["metadata"]["name"]
        for d in find(objs, "Deployment")
        if _selects(selector, d["spec"]["template"]["metadata"]["labels"])
    ]


def _secret_refs(objs: list[Obj]) -> set[tuple[str, str | None]]:
    """(Secret name, key) pairs the pods and KEDA's TriggerAuthentications read."""
    refs: set[tuple[str, str | None]] = set()
    for d, c in containers(objs):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        for v in d["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in v:
                for item in v["secret"].get("items", [{"key": None}]):
                    refs.add((v["secret"]["secretName"], item["key"]))
    for auth in find(objs, "TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", []):
            refs.add((ref["name"], ref["key"]))
    return refs


def _env(objs: list[Obj], container: Obj) -> dict[str, Any]:
    """A container's environment: its ConfigMaps' data, then its own env entries."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env |= one(objs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", e.get("valueFrom"))
    return env


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_passes_its_schema(target: str) -> None:
    objs = render(target)
    assert objs
    for kubernetes in (None, OLDEST_KUBERNETES):  # None: the newest schemas
        errors = [err for o in objs for err in schema_errors(o, kubernetes)]
        assert errors == [], kubernetes


def test_schema_checks_reject_what_a_cluster_would_reject() -> None:
    objs = render("overlays/cpu")
    deployment = one(objs, "Deployment", "avserve-gateway")
    deployment["spec"]["replica"] = 2  # typo of replicas: strict validation refuses it
    assert schema_errors(deployment)

    scaled = one(objs, "ScaledObject", "avserve-worker")
    assert schema_errors({**scaled, "spec": {**scaled["spec"], "minReplicas": 1}})
    assert schema_errors({**scaled, "spec": {**scaled["spec"], "minReplicaCount": "1"}})
    too_many = {**scaled["spec"], "minReplicaCount": scaled["spec"]["maxReplicaCount"] + 1}
    assert schema_errors({**scaled, "spec": too_many})
    scaled["spec"]["triggers"][0]["metadata"]["lagCount"] = 40  # metadata values are strings
    assert schema_errors(scaled)

    auth = one(objs, "TriggerAuthentication", "avserve-redis")
    del auth["spec"]["secretTargetRef"][0]["key"]
    assert schema_errors(auth)
    assert schema_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}})


def test_applying_k8s_deploys_the_whole_service_as_the_cpu_overlay() -> None:
    objs = render("")
    assert objs == render("overlays/cpu")
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == sorted(
        [
            ("Namespace", "avserve"),
            ("ServiceAccount", "avserve"),
            ("ConfigMap", "avserve-gateway"),
            ("Service", "avserve-gateway"),
            ("Deployment", "avserve-gateway"),
            ("Deployment", "avserve-worker"),
            ("HorizontalPodAutoscaler", "avserve-gateway"),
            ("ScaledObject", "avserve-worker"),
            ("TriggerAuthentication", "avserve-redis"),
            ("PodDisruptionBudget", "avserve-gateway"),
            ("PodDisruptionBudget", "avserve-worker"),
            ("NetworkPolicy", "avserve-gateway"),
            ("NetworkPolicy", "avserve-worker"),
        ]
    )


def test_base_kustomization_lists_every_manifest_in_base() -> None:
    base = K8S / "base"
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in base.glob("*.yaml") if p.stem != "kustomization"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_with_redis_set_every_overlay_runs_workers_scaled_by_keda(overlay: str) -> None:
    objs = render(f"overlays/{overlay}")
    gateway = next(c for d, c in containers(objs) if c["args"][0] == "serve")
    env = _env(objs, gateway)
    assert "REDIS_URL" in env  # so the gateway runs no embedded worker ...
    assert env.get("AVSERVE_QUEUE__EMBEDDED_WORKER", "false") == "false"
    # ... and a worker Deployment does the jobs, scaled by KEDA on the same Redis.
    (worker,) = [d for d, c in containers(objs) if c["args"][0] == "worker"]
    (worker_container,) = worker["spec"]["template"]["spec"]["containers"]
    assert _env(objs, worker_container)["REDIS_URL"] == env["REDIS_URL"]
    (scaled,) = find(objs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1
    for trigger in scaled["spec"]["triggers"]:
        one(objs, "TriggerAuthentication", trigger["authenticationRef"]["name"])


@pytest.mark.parametrize("target", TARGETS)
def test_every_reference_resolves_within_the_render(target: str) -> None:
    objs = render(target)
    (namespace,) = find(objs, "Namespace")
    ns = namespace["metadata"]["name"]
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} == {ns}

    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    for d, c in containers(objs):
        pod = d["spec"]["template"]["spec"]
        if d["metadata"]["name"].startswith("avserve-"):
            assert ("ServiceAccount", pod["serviceAccountName"]) in names
        for source in c.get("envFrom", []):
            assert ("ConfigMap", source["configMapRef"]["name"]) in names
    secrets = {o["metadata"]["name"]: o.get("data", {}) for o in find(objs, "Secret")}
    for name, key in _secret_refs(objs):
        if target.endswith("dev"):  # the dev overlay generates every Secret it reads
            assert key is None or key in secrets[name], (name, key)
        else:
            assert name in OPERATOR_SECRETS, name

    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for scaler in find(objs, kind):
            assert ("Deployment", scaler["spec"]["scaleTargetRef"]["name"]) in names
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for policy in find(objs, kind):
            field = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            assert len(_pods_selected(objs, policy["spec"][field]["matchLabels"])) == 1
    for service in find(objs, "Service"):
        (target_name,) = _pods_selected(objs, service["spec"]["selector"])
        (c,) = one(objs, "Deployment", target_name)["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


@pytest.mark.parametrize("target", TARGETS)
def test_network_policies_let_in_the_ports_the_pods_serve(target: str) -> None:
    objs = render(target)
    for policy in find(objs, "NetworkPolicy"):
        (name,) = _pods_selected(objs, policy["spec"]["podSelector"]["matchLabels"])
        (c,) = one(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        allowed = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert {p["containerPort"] for p in c["ports"]} <= allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configmap_value_is_a_setting_the_service_parses(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    objs = render(f"overlays/{overlay}")
    known = setting_env_names()
    for d, c in containers(objs):
        if not d["metadata"]["name"].startswith("avserve-"):
            continue
        env = {k: v for k, v in _env(objs, c).items() if isinstance(v, str)}
        assert set(env) - {"POD_NAME"} <= known, set(env) - known
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # parses (and range-checks) every value
        assert settings.device == env["AVSERVE_DEVICE"]


@pytest.mark.parametrize("target", TARGETS)
def test_pods_meet_the_restricted_pod_security_profile(target: str) -> None:
    objs = render(target)
    (namespace,) = find(objs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    allowed_volumes = {"emptyDir", "secret", "configMap", "projected", "downwardAPI"}
    for d, c in containers(objs):
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
        for v in pod.get("volumes", []):
            assert set(v) - {"name"} <= allowed_volumes, v
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]


def test_gpu_overlay_runs_the_cuda_image_on_one_gpu_per_pod_with_the_cuda_settings() -> None:
    objs = render("overlays/gpu")
    assert "-t avserve:gpu" in (REPO / "docker" / "Dockerfile.gpu").read_text()
    pods = list(containers(objs))
    assert {d["metadata"]["name"] for d, _ in pods} == {"avserve-gateway", "avserve-worker"}
    for d, c in pods:
        pod = d["spec"]["template"]["spec"]
        assert c["image"] == "avserve:gpu"
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        env = _env(objs, c)
        cuda = {
            "AVSERVE_DEVICE": "cuda",
            "AVSERVE_FP16": "true",
            "AVSERVE_PIPELINE__GLANCE_DEVICE": "cuda",
            "AVSERVE_RUNTIME": "torchscript",  # fp16 autocast covers the torch runtimes only
        }
        assert set(cuda) <= setting_env_names()
        assert {k: env[k] for k in cuda} == cuda
    assert one(objs, "ScaledObject", "avserve-worker")["spec"]["minReplicaCount"] >= 1
    # The CPU flavour stays GPU-free.
    for _, c in containers(render("overlays/cpu")):
        assert c["image"] == "avserve:cpu" and "nvidia.com/gpu" not in c["resources"]["limits"]


def test_dev_overlay_is_single_replica_small_and_brings_its_own_redis() -> None:
    objs = render("overlays/dev")
    for d, c in containers(objs):
        assert d["spec"]["replicas"] == 1
        cpu = str(c["resources"]["requests"]["cpu"])
        assert cpu.endswith("m") and int(cpu[:-1]) <= 500, cpu
    assert one(objs, "HorizontalPodAutoscaler", "avserve-gateway")["spec"]["maxReplicas"] <= 2
    scaled = one(objs, "ScaledObject", "avserve-worker")["spec"]
    assert 1 == scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= 2

    # Gateway, workers and KEDA all reach the Redis this overlay deploys, whose image is a
    # Redis >= 7 (KEDA's lag mode needs XINFO GROUPS lag).
    redis_service = one(objs, "Service", "redis")
    fqdn = f"redis.{redis_service['metadata']['namespace']}.svc.cluster.local"
    port = redis_service["spec"]["ports"][0]["port"]
    url = base64.b64decode(one(objs, "Secret", "avserve-redis")["data"]["url"]).decode()
    assert (urlsplit(url).hostname, urlsplit(url).port) == (fqdn, port)
    for trigger in scaled["triggers"]:
        assert trigger["metadata"]["address"] == f"{fqdn}:{port}"
    (redis,) = one(objs, "Deployment", "redis")["spec"]["template"]["spec"]["containers"]
    assert int(redis["image"].split(":")[1].split(".")[0]) >= 7


# Parameter names of KEDA's redis-streams scaler (pkg/scalers/redis_streams_scaler.go and the
# connection fields in redis_scaler.go, v2.20.2). A misspelt key is silently ignored by KEDA.
REDIS_STREAMS_PARAMETERS = {
    "address", "addresses", "host", "hosts", "port", "ports", "databaseIndex", "enableTLS",
    "unsafeSsl", "stream", "consumerGroup", "lagCount", "pendingEntriesCount", "streamLength",
    "activationLagCount", "sentinelMaster",
}  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_triggers_use_parameters_the_redis_streams_scaler_reads(overlay: str) -> None:
    scaled = one(render(f"overlays/{overlay}"), "ScaledObject", "avserve-worker")
    modes = []
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis-streams"
        meta = trigger["metadata"]
        assert set(meta) <= REDIS_STREAMS_PARAMETERS, set(meta) - REDIS_STREAMS_PARAMETERS
        # With a consumer group the scaler uses lagCount when set, else pendingEntriesCount.
        assert "consumerGroup" in meta and ("lagCount" in meta) != ("pendingEntriesCount" in meta)
        modes.append(("lag" if "lagCount" in meta else "pending", meta["stream"]))
    assert len(set(modes)) == len(modes) == 4  # lag and pending entries, on both lanes
