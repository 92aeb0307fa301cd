"""The ablation runner's plumbing: variant order, command lines, paper orderings, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models import get_config
from offline.evaluation.ablation import (
    DEFAULT,
    GROUPS,
    PAPER_TOP1,
    VARIANTS,
    Recipe,
    orderings,
    train_command,
    variants,
)
from tests.scripts_loader import load_script


def _row(correct: int, n: int = 200) -> dict[str, Any]:
    from offline.evaluation.stats import accuracy

    return {"top1": accuracy(correct, n)}


def test_every_variant_names_a_config_and_every_group_row_is_a_variant() -> None:
    names = {v.name for v in VARIANTS}
    for v in VARIANTS:
        get_config(v.arch)
    assert all(n in names for rows in GROUPS.values() for n in rows)
    assert all(DEFAULT in rows for rows in GROUPS.values())  # each sub-table varies one factor


def test_variants_train_in_the_order_asked_and_unknown_names_are_refused() -> None:
    assert [v.name for v in variants(["dp0", DEFAULT])] == ["dp0", DEFAULT]
    assert len(variants()) == len(VARIANTS)
    with pytest.raises(ValueError, match="unknown ablation variant"):
        variants(["nope"])


def test_variants_share_the_recipe_and_differ_only_in_their_own_flags(tmp_path: Path) -> None:
    r = Recipe(epochs=3, batch_size=8, crop_size=32, steps_per_epoch=5)
    a, b = (train_command(v, r, tmp_path / "train", tmp_path / v.name, tmp_path / "c")
            for v in variants([DEFAULT, "dp05"]))  # fmt: skip
    assert a[a.index("--epochs") + 1] == "3" and a[a.index("--steps-per-epoch") + 1] == "5"
    extra = [x for x in b if x not in a]
    assert extra == [str(tmp_path / "dp05"), "--override", "drop_pathway=0.5"]


def test_orderings_compare_with_the_paper_and_flag_separated_intervals() -> None:
    rows = {DEFAULT: _row(150), "a_f_s": _row(100), "dp0": _row(148)}
    got = {o["below"]: o for o in orderings(rows)}
    assert set(got) == {"a_f_s", "dp0"}  # only orderings whose rows ran
    assert got["a_f_s"]["paper_points"] == round(PAPER_TOP1[DEFAULT] - PAPER_TOP1["a_f_s"], 1)
    assert [o["paper_points"] > 0 for o in orderings({"avs": _row(1), DEFAULT: _row(1)})] == [True]
    assert got["a_f_s"]["same_sign"] and got["a_f_s"]["intervals_separate"]
    assert got["dp0"]["same_sign"] and not got["dp0"]["intervals_separate"]


def test_rendered_table_lists_every_group_row_with_its_interval() -> None:
    rr = load_script("render_results")
    pairs = {"ball": 0.5, "spinner": 1.0, "slide": 0.0, "drift": 0.0, "clicks": 0.0}
    row = {"label": "L", "gmacs_per_clip": 0.1, "params_inference": 1000, "paper_top1": 77.0,
           "pairs": pairs, "pairs_n": dict.fromkeys(pairs, 10), **_row(50, 100)}  # fmt: skip
    report = {
        "recipe": Recipe().__dict__, "train_clips": 10, "test_clips": 100,
        "groups": {"g": [DEFAULT]}, "variants": {DEFAULT: row},
        "orderings": orderings({DEFAULT: row, "dp0": {**row, **_row(40, 100)}}),
    }  # fmt: skip
    text = rr.ablation(report)
    assert "| g | L | 50.0 [40.4–59.6] (n=100) | 75.0 | 77.0 |" in text
    assert "DropPathway 0.8 beats none" in text
