"""The autoscaler arithmetic of ``bench_scaling``, on the shipped manifests' targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import scaling_rules as rules

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return rules.rendered_manifests(REPO)[0]


def test_the_hpa_targets_are_the_gateway_gauges_the_service_exports(docs: list[dict]) -> None:
    from service.metrics import Metrics

    hpa = rules.gateway_hpa(docs)
    exported = Metrics().render().decode()
    assert hpa.pod_targets and all(f"# TYPE {name} gauge" in exported for name in hpa.pod_targets)
    assert hpa.min_replicas <= hpa.max_replicas


def test_the_hpa_asks_for_ceil_of_load_over_target_within_its_bounds() -> None:
    hpa = rules.HpaRules(2, 20, {"inflight": 16.0}, cpu_utilization=80, cpu_request=2.0)
    assert hpa.desired(2, {"inflight": 0}, 0.0) == 2  # idle: the minimum
    assert hpa.desired(2, {"inflight": 48}, 0.0) == 3  # 24 per pod for 16: ceil(2 * 1.5)
    assert hpa.desired(2, {"inflight": 34}, 0.0) == 2  # 17 per pod: inside the 10 % tolerance
    assert hpa.desired(2, {"inflight": 1000}, 0.0) == 20  # capped
    assert hpa.desired(2, {"inflight": 0}, 6.4) == 4  # 160 % of the CPU request for 80 %


def test_keda_asks_for_ceil_of_backlog_over_threshold_and_idles_at_its_minimum(
    docs: list[dict],
) -> None:
    keda = rules.worker_keda(docs)
    by_kind = {(t.stream, t.kind): t.threshold for t in keda.triggers}
    assert ("stream:batch", "lag") in by_kind and ("stream:batch", "pending") in by_kind
    assert keda.desired({}, {}) == keda.min_replicas
    lag = int(3 * by_kind["stream:batch", "lag"]) + 1
    assert keda.desired({"stream:batch": lag}, {}) == min(4, keda.max_replicas)
    assert keda.desired({"stream:batch": 10**6}, {}) == keda.max_replicas


@pytest.mark.parametrize(("text", "value"), [("500m", 0.5), ("2", 2.0), (16, 16.0)])
def test_kubernetes_quantities_parse(text: str | int, value: float) -> None:
    assert rules.quantity(text) == value
