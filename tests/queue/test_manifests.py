"""The worker and KEDA manifests agree with the queue code they deploy."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from service.cli import app
from service.queue import QueueConfig
from service.settings import Settings
from tests.deploy.manifests import render


def docs() -> dict[str, dict[str, Any]]:
    """The worker's objects as `kubectl apply -k k8s/` sends them, by kind."""
    return {
        d["kind"]: d
        for d in render("")
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "worker"
    }


def worker_container() -> dict[str, Any]:
    (c,) = docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_termination_grace_covers_the_worker_drain() -> None:
    deployment = docs()["Deployment"]
    env = {e["name"]: e.get("value") for e in worker_container()["env"]}
    grace = float(env["AVSERVE_QUEUE__SHUTDOWN_GRACE_S"])
    # grace + the last blocked read + releasing leftovers, with margin
    assert grace + 10 < deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_worker_env_and_args_are_ones_the_code_reads() -> None:
    queue_fields = Settings.model_fields["queue"].annotation.model_fields  # type: ignore[union-attr]
    known = {f"AVSERVE_QUEUE__{n.upper()}" for n in queue_fields} | {"REDIS_URL", "POD_NAME"}
    container = worker_container()
    assert {e["name"] for e in container["env"]} <= known
    assert container["args"][0] == "worker"
    help_text = CliRunner().invoke(app, ["worker", "--help"], terminal_width=200).output
    for arg in container["args"][1:]:
        if arg.startswith("--"):
            assert arg in help_text


def test_keda_watches_the_streams_and_group_workers_use() -> None:
    config = QueueConfig()
    scaled = docs()["ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "avserve-worker"
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["stream"] for t in triggers} == {
        config.key(config.high_stream),
        config.key(config.batch_stream),
    }
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {config.group}
    assert any("lagCount" in t["metadata"] for t in triggers)


def test_worker_liveness_runs_the_heartbeat_check() -> None:
    probe = worker_container()["livenessProbe"]
    command = probe["exec"]["command"]
    assert command[0] == "avserve" and command[1:] == ["worker", "--check"]
    help_text = CliRunner().invoke(app, ["worker", "--help"], terminal_width=200).output
    assert "--check" in help_text
    # The check reads the file the worker's loop writes to /tmp, a writable volume here.
    mounts = {m["mountPath"] for m in worker_container()["volumeMounts"]}
    assert "/tmp" in mounts
