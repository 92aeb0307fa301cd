"""``avserve classify`` output: input order, full names, errors in their own columns."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.cli.classify_output import COLUMNS, OrderedJsonWriter, row, write_table, write_tsv
from service.errors import MediaError
from service.schemas import (
    AnswerWarning,
    ClassifyResult,
    ComputeSummary,
    HeadVerdict,
    LabelScore,
    ModelRef,
    VideoSummary,
)

LONG = Path("videos") / ("a-very-long-folder-name-" * 4) / "clip-with-a-long-name-000001.mp4"


def result(label: str, score: float = 0.91234) -> ClassifyResult:
    return ClassifyResult(
        model=ModelRef(name="m", version="1"),
        policy="glance",
        k=2,
        heads={"kinetics": [LabelScore(label=label, index=0, score=score)]},
        audio="silent",
        video=VideoSummary(duration_s=3.0, width=64, height=48, fps=25.0, container="mp4"),
        timings_ms={"total": 12.5},
        compute=ComputeSummary(
            gmacs=0.5, glance_gmacs=0.1, heavy_gmacs=0.4, dense30_gmacs=5.0, fraction_of_dense=0.1
        ),
        warnings=[AnswerWarning(code="silent_audio", message="...")],
    )


RESULTS = [
    (LONG, result("ball_chime")),
    (Path("bad.mp4"), MediaError("only 9% of the video decodes", code="undecodable")),
]


def test_json_lines_come_in_input_order_whatever_order_files_finish() -> None:
    paths = [Path(f"{i}.mp4") for i in range(4)]
    out = io.StringIO()
    writer = OrderedJsonWriter(paths, out)
    for i in (2, 0, 3, 1):
        writer(i, result(f"label{i}"))
        if i == 0:  # 0 is out as soon as it is done; 2 waits for 1
            assert [json.loads(x)["file"] for x in out.getvalue().splitlines()] == ["0.mp4"]
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [d["file"] for d in lines] == [f"{i}.mp4" for i in range(4)]
    assert lines[0]["heads"]["kinetics"][0]["label"] == "label0"


def test_tsv_has_a_header_full_names_and_errors_in_their_own_columns() -> None:
    out = io.StringIO()
    write_tsv(RESULTS, out)
    header, ok, bad = (line.split("\t") for line in out.getvalue().splitlines())
    assert header == list(COLUMNS)
    row = dict(zip(header, ok, strict=True))
    assert row["file"] == str(LONG) and row["label"] == "ball_chime"
    assert row["score"] == "0.9123" and row["audio"] == "silent" and row["error"] == ""
    assert row["warnings"] == "silent_audio"
    err = dict(zip(header, bad, strict=True))
    assert err["label"] == "" and err["ms"] == ""
    assert err["error"] == "undecodable" and err["message"] == "only 9% of the video decodes"


def test_table_off_a_terminal_is_not_cut_to_80_columns() -> None:
    out = io.StringIO()  # not a tty
    write_table(RESULTS, out)
    text = out.getvalue()
    assert str(LONG) in text and len(str(LONG)) > 80
    assert "only 9% of the video decodes" in text
    bad = next(line for line in text.splitlines() if "bad.mp4" in line)
    assert bad.split()[1:] == ["undecodable", "only", "9%", "of", "the", "video", "decodes"]


def test_missing_paths_are_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.wiring

    async def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(service.wiring, "start_services", must_not_load)
    (tmp_path / "real.mp4").write_bytes(b"")
    result = CliRunner().invoke(
        app, ["classify", str(tmp_path / "real.mp4"), str(tmp_path / "nope.mp4")]
    )
    assert result.exit_code == 2
    assert f"no such file or folder: {tmp_path / 'nope.mp4'}" in result.output


def test_the_table_says_whether_the_model_recognised_a_class() -> None:
    answer = result("ball_thud", 0.4)
    answer.verdicts = {
        "kinetics": HeadVerdict(
            verdict="unknown", reason="out_of_distribution", confidence=0.4, ood_score=0.6,
            min_confidence=0.7,
        )
    }  # fmt: skip
    cells = row(Path("a.mp4"), answer)
    assert cells["verdict"] == "unknown (out_of_distribution)"
    assert cells["label"] == "ball_thud"
