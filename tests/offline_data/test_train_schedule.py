"""Learning-rate schedule: linear warm-up into a half-period cosine."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from offline.train import LRSchedule, TrainConfig


def test_warm_up_rises_linearly_from_the_start_rate_to_the_cosine() -> None:
    s = LRSchedule(base_lr=0.1, epochs=10, warmup_epochs=2, warmup_start_lr=0.01)
    at_end = 0.1 * 0.5 * (1 + math.cos(math.pi * 2 / 10))
    assert s(0.0) == pytest.approx(0.01)
    assert s(1.0) == pytest.approx((0.01 + at_end) / 2)
    assert s(2.0) == pytest.approx(at_end)
    e = np.linspace(0, 2, 9)
    assert np.allclose(np.diff([s(x) for x in e]), np.diff([s(x) for x in e])[0])


def test_cosine_decays_monotonically_from_base_to_end_over_half_a_period() -> None:
    s = LRSchedule(base_lr=0.2, epochs=8, end_lr=0.002)
    values = [s(e) for e in np.linspace(0, 8, 50)]
    assert values[0] == pytest.approx(0.2) and values[-1] == pytest.approx(0.002)
    assert all(a > b for a, b in itertools.pairwise(values))
    assert s(4.0) == pytest.approx((0.2 + 0.002) / 2)  # half-way is the mid-point
    assert s(100.0) == pytest.approx(0.002)


def test_train_config_builds_its_schedule_and_rejects_nonsense() -> None:
    cfg = TrainConfig(epochs=4, base_lr=0.4, warmup_epochs=1, warmup_start_lr=0.04)
    assert cfg.schedule()(0) == pytest.approx(0.04)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"epochs": 0}, {"base_lr": -1.0}, {"warmup_epochs": 5.0, "epochs": 2},
                {"momentum": 1.0}, {"label_smoothing": 1.0}):  # fmt: skip
        with pytest.raises(ValueError):
            TrainConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TrainConfig.from_dict({"lr": 0.1})
