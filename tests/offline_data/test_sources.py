"""Dataset sources from a user's files: class folders, CSV / JSONL / Kinetics lists, splits.

Every unusable row, file or folder must come back as a typed problem (nothing silently dropped).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.data.export import write_class_folders
from offline.data.sources import DataError, SourceSpec, hash_split, open_source
from offline.data.sources.check import check_report, probe_samples, usable


def codes(src: object) -> list[str]:
    return [p.code for p in src.problems]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def folders(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folders(tiny_set, tmp_path_factory.mktemp("src") / "videos")


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """A few (empty) files: list parsing does not open them; only their existence counts."""
    root = tmp_path / "videos"
    for name in ("a.mp4", "b.mkv", "c.webm", "sub/d.mp4"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return root


# ---- class folders ----------------------------------------------------------------------------
def test_class_folders_give_sorted_classes_and_one_sample_per_file(folders: Path) -> None:
    src = open_source(folders)
    assert src.kind == "folder"
    assert list(src.classes) == sorted(p.name for p in folders.iterdir())
    assert len(src.samples) == len(list(folders.rglob("*.mp4")))
    assert all(src.classes[s.label] == s.path.parent.name for s in src.samples)
    assert src.problems == []
    src.require_clean()


def test_an_empty_class_folder_is_a_typed_error_and_other_files_are_warnings(
    folders: Path, tmp_path: Path
) -> None:
    root = tmp_path / "v"
    for d in folders.iterdir():
        (root / d.name).mkdir(parents=True)
        for f in d.iterdir():
            (root / d.name / f.name).symlink_to(f)
    (root / "zebra").mkdir()
    (root / "ball_thud" / "notes.txt").write_text("hi")
    (root / "loose.mp4").write_bytes(b"x")
    (root / ".cache-128-center").mkdir()  # written by training: never a class
    src = open_source(root)
    assert "zebra" not in src.classes and ".cache-128-center" not in src.classes
    assert sorted(codes(src)) == ["empty_class", "not_video", "unlabeled_file"]
    assert [p.severity for p in src.problems if p.code == "empty_class"] == ["error"]
    with pytest.raises(DataError) as err:
        src.require_clean()
    assert err.value.code == "empty_class" and "zebra" in err.value.message
    src.require_clean(allow_errors=True)  # --skip-bad: go on, the problem stays reported


def test_a_folder_without_class_folders_is_unlabeled(videos: Path) -> None:
    (videos / "sub" / "d.mp4").unlink()
    (videos / "sub").rmdir()
    src = open_source(videos)
    assert not src.labelled and len(src.samples) == 3
    assert all(s.labels == () and s.label == -1 for s in src.samples)


# ---- CSV lists ------------------------------------------------------------------------------
def test_csv_with_header_reads_windows_and_the_split_column(videos: Path) -> None:
    lst = videos / "list.csv"
    lst.write_text(
        "path,label,start_s,end_s,split\n"
        "a.mp4,dog,1.5,4,train\nb.mkv,cat,,,val\nsub/d.mp4,dog,0,2,validation\n"
    )
    src = open_source(lst)
    assert src.kind == "csv" and src.classes == ("cat", "dog") and src.problems == []
    a = src.samples[0]
    assert (a.path, a.labels, a.start_s, a.end_s) == (videos / "a.mp4", (1,), 1.5, 4.0)
    assert [s.path.name for s in src.subset("val").samples] == ["b.mkv", "d.mp4"]
    assert [s.path.name for s in src.subset("train").samples] == ["a.mp4"]


def test_bad_csv_rows_are_reported_with_their_line_numbers(videos: Path) -> None:
    lst = videos / "list.csv"
    lst.write_text(
        "path,label,start_s,end_s\n"
        "a.mp4,dog\n"  # 2: fine
        "b.mkv\n"  # 3: too few columns
        "c.webm,cat,abc,\n"  # 4: not a number
        "c.webm,cat,5,2\n"  # 5: empty window
        "c.webm,,,\n"  # 6: empty label
        "gone.mp4,cat\n"  # 7: missing file
    )
    src = open_source(lst)
    assert [s.path.name for s in src.samples] == ["a.mp4"]
    got = [(p.code, p.where) for p in src.problems]
    assert got == [
        ("bad_row", "list.csv:3"),
        ("bad_row", "list.csv:4"),
        ("bad_row", "list.csv:5"),
        ("bad_row", "list.csv:6"),
        ("missing_file", "list.csv:7"),
    ]
    with pytest.raises(DataError) as err:
        src.require_clean()
    assert err.value.code == "bad_row" and "and 4 more" in err.value.message


def test_headerless_pyslowfast_lists_sort_integer_labels_numerically(videos: Path) -> None:
    lst = videos / "train.csv"
    lst.write_text("a.mp4 10\nb.mkv 2\nc.webm 0\n")
    src = open_source(SourceSpec(lst))
    assert src.classes == ("0", "2", "10")
    assert [src.classes[s.label] for s in src.samples] == ["10", "2", "0"]


def test_list_paths_resolve_against_videos_dir(videos: Path, tmp_path: Path) -> None:
    lst = tmp_path / "elsewhere" / "l.csv"
    lst.parent.mkdir()
    lst.write_text("path,label\na.mp4,x\n")
    assert codes(open_source(lst)) == ["missing_file"]
    assert open_source(SourceSpec(lst, videos_dir=videos)).samples[0].path == videos / "a.mp4"


def test_multi_label_csv_cells_make_a_multi_label_source(videos: Path) -> None:
    lst = videos / "ml.csv"
    lst.write_text("path,labels\na.mp4,dog|bark\nb.mkv,cat\n")
    src = open_source(lst)
    assert src.multi_label and src.classes == ("bark", "cat", "dog")
    assert [s.labels for s in src.samples] == [(2, 0), (1,)]
    single = open_source(SourceSpec(lst, multi_label=False))
    assert codes(single) == ["bad_row"] and len(single.samples) == 1


def test_labels_outside_a_fixed_label_set_are_unknown_label_errors(videos: Path) -> None:
    lst = videos / "val.csv"
    lst.write_text("path,label\na.mp4,dog\nb.mkv,wolf\n")
    src = open_source(SourceSpec(lst, classes=("cat", "dog")))
    assert src.classes == ("cat", "dog") and len(src.samples) == 1
    assert codes(src) == ["unknown_label"] and "wolf" in src.problems[0].message


# ---- Kinetics CSV -----------------------------------------------------------------------------
def test_kinetics_rows_resolve_trimmed_and_full_downloads(tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    (dl / "abseiling").mkdir(parents=True)
    (dl / "abseiling" / "0347ZoDXyP0_000095_000105.mp4").write_bytes(b"x")  # trimmed clip
    (dl / "zzFULLvid01.mkv").write_bytes(b"x")  # full video
    lst = tmp_path / "kinetics400_val.csv"
    lst.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,0347ZoDXyP0,95,105,val\n"
        '"air drumming",zzFULLvid01,12,22,val\n'
        "abseiling,deletedVideo,0,10,val\n"
    )
    src = open_source(SourceSpec(lst, videos_dir=dl))
    assert src.kind == "kinetics" and src.classes == ("abseiling", "air drumming")
    trimmed, full = src.samples
    assert trimmed.path.name == "0347ZoDXyP0_000095_000105.mp4" and trimmed.start_s is None
    assert (full.path.name, full.start_s, full.end_s) == ("zzFULLvid01.mkv", 12.0, 22.0)
    assert all(s.split == "val" for s in src.samples)
    assert [(p.code, p.where) for p in src.problems] == [("missing_file", lst.name + ":4")]


# ---- JSON lines -----------------------------------------------------------------------------
def test_jsonl_reads_string_and_list_labels_and_reports_bad_lines(videos: Path) -> None:
    lst = videos / "list.jsonl"
    lines = [
        {"path": "a.mp4", "labels": ["dog", "bark"], "start_s": 1, "end_s": 3},
        {"file": "b.mkv", "label": "cat", "split": "val"},
        {"path": "c.webm", "label": 7},
    ]
    lst.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n[1, 2]\n")
    src = open_source(lst)
    assert src.kind == "jsonl" and src.multi_label
    assert [s.path.name for s in src.samples] == ["a.mp4", "b.mkv"]
    assert src.samples[0].start_s == 1.0 and src.samples[1].split == "val"
    assert codes(src) == ["bad_row"] * 3


def test_unknown_list_formats_and_missing_sources_are_typed_errors(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"x")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    for path in (tmp_path / "x.parquet", tmp_path / "clip.mp4", tmp_path / "none"):
        with pytest.raises(DataError) as err:
            open_source(path)
        assert err.value.code == "bad_source"


# ---- splits -----------------------------------------------------------------------------------
def test_hash_split_is_deterministic_and_close_to_the_fraction() -> None:
    keys = [f"class_{i % 7}/clip_{i}.mp4" for i in range(4000)]
    first = [hash_split(k, 0.2) for k in keys]
    assert first == [hash_split(k, 0.2) for k in keys]
    assert 0.17 < first.count("val") / len(keys) < 0.23
    assert {hash_split(k, 0.0) for k in keys} == {"train"}


def test_hash_split_train_and_val_partition_the_source(folders: Path) -> None:
    src = open_source(folders)
    train, val = src.subset("train", 0.5), src.subset("val", 0.5)
    paths = sorted(s.path for s in train.samples + val.samples)
    assert paths == sorted(s.path for s in src.samples) and val.samples and train.samples
    assert train.classes == val.classes == src.classes


# ---- data check -------------------------------------------------------------------------------
def test_probing_names_unreadable_files_with_the_media_error_code(
    folders: Path, tmp_path: Path
) -> None:
    lst = tmp_path / "l.csv"
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    (tmp_path / "empty.mp4").write_bytes(b"")
    rows = [f"{s},{s.parent.name}" for s in sorted(folders.rglob("*.mp4"))[:2]]
    lst.write_text("path,label\n" + "\n".join([*rows, "broken.mp4,x", "empty.mp4,x"]) + "\n")
    src = open_source(lst)
    probed = probe_samples(src)
    report = check_report(src, probed)
    assert report["samples"] == 4 and report["usable"] == 2
    bad = {Path(p["where"]).name: p["code"] for p in report["problems"]}
    assert bad == {"broken.mp4": "unsupported_container", "empty.mp4": "empty_file"}
    assert report["classes"]["x"]["count"] == 0
    assert report["duration_s"]["min"] > 2.0
    kept = usable(src, probed)
    assert len(kept.samples) == 2 and len(kept.errors) == 2
