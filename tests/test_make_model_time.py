"""The stage log of scripts/make_model.sh becomes the timing result the docs render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts_loader import load_script


def _script():  # type: ignore[no-untyped-def]
    return load_script("make_model_time")


def test_each_stage_lasts_until_the_next_mark_and_the_goal_is_judged_on_the_total(
    tmp_path: Path,
) -> None:
    log = tmp_path / "stages.tsv"
    log.write_text("1000\tgenerate\n2200\ttrain\n5800\tevaluate\n6460\tmade: zoo (2.2M)\n")
    out = tmp_path / "time.json"
    assert _script().main([str(log), str(out), "--recipe", "EPOCHS=20"]) == 0
    r = json.loads(out.read_text())
    assert [(x["stage"], x["seconds"]) for x in r["stages"]] == [
        ("generate", 1200), ("train", 3600), ("evaluate", 660),
    ]  # fmt: skip
    assert r["total_seconds"] == 5460 and r["total_minutes"] == 91.0
    assert r["meets_goal"] is False and r["result"] == "made: zoo (2.2M)"
    assert r["recipe"] == "EPOCHS=20" and r["machine"]["cores"] and "loadavg_at_end" in r["machine"]


def test_a_log_without_an_end_mark_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "stages.tsv"
    log.write_text("1000\tgenerate\n")
    with pytest.raises(SystemExit):
        _script().main([str(log), str(tmp_path / "time.json")])
