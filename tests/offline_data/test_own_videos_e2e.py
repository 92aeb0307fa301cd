"""docs/own-videos.md end to end: a labelled class-folder tree -> data check -> train avslowfast
-> train glance -> a real server on loopback answering with the trained glance.

Tiny on purpose (AVSynth clips written out as class folders, 1-2 steps, 32 px crops): this
checks that the commands chain, not what the model learns.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from offline.data.export import write_class_folders
from service.cli import app
from tests.api.servers import running_server, serve_command

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _ok(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_labelled_folder_becomes_a_served_package_with_a_trained_glance(
    tiny_set: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    videos = write_class_folders(tiny_set, tmp_path / "videos")
    classes = sorted(p.name for p in videos.iterdir())

    report = json.loads(_ok("data", "check", str(videos), "--json"))
    assert report["errors"] == 0 and list(report["classes"]) == classes

    run = tmp_path / "run"
    _ok("train", "avslowfast", "--data", str(videos), "--val-fraction", "0.3",
        "--out", str(run), "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2",
        "--crop-size", "32", "--cache-side", "40", "--threads", "1", "--no-progress",
        "--name", "my-videos")  # fmt: skip
    run_info = json.loads((run / "run.json").read_text())
    assert run_info["labels"] == classes
    split = run_info["source"]
    assert split["train"]["samples"] + split["val"]["samples"] == report["usable"]

    glance = tmp_path / "glance"
    _ok("train", "glance", "--heavy", str(run / "package"), "--data", str(videos),
        "--out", str(glance), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
        "--num-snippets", "4", "--crops", "2", "--threads", "1", "--no-progress")  # fmt: skip

    env = {"AVSERVE_MODEL_DIR": str(glance / "package"), "AVSERVE_DEVICE": "cpu"}
    with running_server(serve_command, env, tmp_path) as server:
        clip = next((videos / classes[0]).iterdir())
        with clip.open("rb") as f:
            resp = httpx.post(
                f"{server.url}/v1/classify", files={"file": (clip.name, f)}, timeout=120
            )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["model"]["name"] == "my-videos"
        assert body["policy"] == "glance"
        (scores,) = body["heads"].values()
        assert scores and {s["label"] for s in scores} <= set(classes)
