"""Calibration rules live in the package's config.json and are validated on load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models import build_model, load_package, save_package
from models.calibration import HeadCalibration
from models.package import PackageError
from models.package_edit import set_calibration

LABELS = ["a", "b", "c", "background"]


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    model = build_model("avslowfast_tiny", num_classes=4)
    return save_package(tmp_path / "pkg", model, name="t", version="1", labels=LABELS)


def test_fitted_rules_round_trip_through_config_json(package: Path) -> None:
    rules = HeadCalibration(
        temperature=1.7, background="background", min_confidence=0.42,
        audio_groups=(("a", "b"),), metrics={"ece": 0.03},
    )  # fmt: skip
    set_calibration(package, {"kinetics": rules})
    loaded = load_package(package).config.head_calibration("kinetics")
    assert loaded == rules
    assert json.loads((package / "config.json").read_text())["calibration"]["kinetics"][
        "audio_groups"
    ] == [["a", "b"]]


def test_a_package_without_rules_gets_the_identity(package: Path) -> None:
    assert load_package(package).config.head_calibration("kinetics") == HeadCalibration()


@pytest.mark.parametrize(
    "rules",
    [
        {"temperature": 0.0},
        {"min_confidence": 1.5},
        {"background": "nope"},
        {"audio_groups": [["a", "zzz"]]},
        {"surprise": 1},
    ],
)
def test_invalid_rules_are_refused_on_load(package: Path, rules: dict[str, object]) -> None:
    cfg = json.loads((package / "config.json").read_text())
    cfg["calibration"] = {"kinetics": rules}
    (package / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((PackageError, ValueError)):
        load_package(package)


def test_rules_for_an_unknown_head_are_refused(package: Path) -> None:
    with pytest.raises(PackageError):
        set_calibration(package, {"nohead": HeadCalibration()})
