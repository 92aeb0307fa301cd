"""Compute accounting is counted once per model and read back by later processes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.configs import AVSlowFastConfig
from models.flops import model_gmacs
from models.named_configs import get_config
from service.compute_cost import FILE_NAME, CostBook


@pytest.fixture(scope="module")
def config() -> AVSlowFastConfig:
    return get_config("avslowfast_tiny")


def test_a_count_matches_the_flop_counter_and_is_stored(
    config: AVSlowFastConfig, tmp_path: Path
) -> None:
    book = CostBook(config, None, tmp_path)
    assert book.missing([64], [])
    assert book.heavy(64) == pytest.approx(model_gmacs(config, crop=64))
    assert not book.missing([64], [])
    stored = json.loads((tmp_path / FILE_NAME).read_text())
    assert list(stored.values()) == [pytest.approx(book.heavy(64))]


def test_a_later_book_reads_the_stored_count_instead_of_counting(
    config: AVSlowFastConfig, tmp_path: Path
) -> None:
    CostBook(config, None, tmp_path).heavy(64)
    path = tmp_path / FILE_NAME
    (key,) = json.loads(path.read_text())
    path.write_text(json.dumps({key: 123.0}))  # a value no count would give
    assert CostBook(config, None, tmp_path).heavy(64) == 123.0


def test_another_architecture_or_crop_is_counted_afresh(
    config: AVSlowFastConfig, tmp_path: Path
) -> None:
    book = CostBook(config, None, tmp_path)
    small = book.heavy(64)
    assert book.heavy(96) > small
    wider = replace(config, width_per_group=config.width_per_group * 2)
    assert CostBook(wider, None, tmp_path).heavy(64) > small


def test_a_model_without_a_glance_costs_nothing_to_glance(
    config: AVSlowFastConfig, tmp_path: Path
) -> None:
    book = CostBook(config, None, tmp_path)
    assert book.glance(3) == 0.0 and not book.missing([], [3])
