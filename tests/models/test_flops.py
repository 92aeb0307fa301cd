"""Parameters and multiply-adds against the paper and the released code (within 1%)."""

from __future__ import annotations

import pytest
import torch

from models import build_model, count_gmacs, get_config, model_gmacs
from models.flops import count_params, dense_gmacs


def test_avslowfast_r50_4x16_cost_matches_the_released_model() -> None:
    c = get_config("avslowfast_r50_4x16")
    # Paper: 39.8 GFLOPs at 256 with the training-only s5_fuse counted, 39.6 without.
    assert 39.6 * 0.99 <= model_gmacs(c, 256) <= 39.8 * 1.01
    assert 31.3 * 0.99 <= model_gmacs(c, 224) <= 31.4 * 1.01
    params = count_params(c)
    assert params["params_inference"] == pytest.approx(41.82e6, rel=0.01)
    assert params["params_total"] == pytest.approx(44.20e6, rel=0.01)


def test_slowfast_r50_4x16_cost_matches_the_paper() -> None:
    c = get_config("slowfast_r50_4x16")
    assert model_gmacs(c, 256) == pytest.approx(36.1, rel=0.01)
    assert count_params(c)["params_inference"] == pytest.approx(34.48e6, rel=0.01)


def test_audio_pathway_alone_costs_about_four_gmacs() -> None:
    # Notes: the Audio pathway is ~4.0 GMACs and 6.12M params (plus a 1024x400 head here).
    c = get_config("audionet_r50")
    assert model_gmacs(c) == pytest.approx(4.0, rel=0.02)
    assert count_params(c)["params_inference"] == pytest.approx(6.12e6 + 1024 * 400 + 400, rel=0.01)


def test_count_gmacs_counts_a_multiply_add_once() -> None:
    layer = torch.nn.Linear(100, 10, bias=False)
    assert count_gmacs(layer, [torch.zeros(3, 100)]) == pytest.approx(3 * 100 * 10 / 1e9)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert count_gmacs(conv, {"input": torch.zeros(1, 2, 5, 5)}) == pytest.approx(
        4 * 25 * 2 * 9 / 1e9
    )


def test_meta_count_equals_a_real_count() -> None:
    c = get_config("avslowfast_tiny")
    model = build_model("avslowfast_tiny", training_parts=False).eval()
    inputs = [torch.zeros(s) for s in c.input_shapes(64).values()]
    assert count_gmacs(model, inputs) == pytest.approx(model_gmacs(c, 64))
    assert dense_gmacs(2.0) == 60.0
