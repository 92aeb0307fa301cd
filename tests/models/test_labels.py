"""Shipped label sets and how ``--labels`` values resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.labels import (
    LabelsError,
    guess_label_set,
    label_sets,
    load_label_set,
    resolve_labels,
)


def test_kinetics400_ships_400_unique_names_in_class_index_order() -> None:
    names = load_label_set("kinetics400")
    assert len(names) == 400 and len(set(names)) == 400
    assert names == sorted(names)  # the official CSVs index classes alphabetically
    assert (names[0], names[5], names[399]) == ("abseiling", "archery", "zumba")
    assert "kinetics400" in label_sets()


def test_labels_resolve_from_a_file_or_a_shipped_name(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("cat\n\ndog \n")
    assert resolve_labels(str(txt)) == ["cat", "dog"]
    multi = tmp_path / "heads.json"
    multi.write_text(json.dumps({"a": ["x", "y"], "b": ["z"]}))
    assert resolve_labels(str(multi)) == {"a": ["x", "y"], "b": ["z"]}
    assert resolve_labels("kinetics400")[1] == "air drumming"
    with pytest.raises(LabelsError, match="neither a file nor a shipped"):
        resolve_labels("kinetics401")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": [1, 2]}')
    with pytest.raises(LabelsError, match="JSON labels file"):
        resolve_labels(str(bad))
    with pytest.raises(LabelsError, match="unknown label set"):
        load_label_set("../../etc/passwd")


def test_a_set_is_guessed_only_when_format_and_class_count_leave_no_doubt() -> None:
    for fmt in ("pytorchvideo", "caffe2", "pyslowfast"):
        assert guess_label_set(fmt, 400) == "kinetics400"
    assert guess_label_set("pyslowfast", 400, dataset="kinetics") == "kinetics400"
    assert guess_label_set("pyslowfast", 400, dataset="charades") is None
    assert guess_label_set("pytorchvideo", 600) is None
    assert guess_label_set("pytorchvideo", 10) is None
