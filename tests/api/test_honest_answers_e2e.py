"""The shipped model over HTTP says "unknown" for real videos that show none of its classes.

A real out-of-domain video and a real video without an audio track (both from ../shared/media,
which is never used for training or for fitting thresholds) go through ``avserve serve`` with
the bundled package; the answer must abstain, say why, and be counted in /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import models
from tests.api.servers import ServerProcess, running_server, serve_command

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ZOO = Path(models.__file__).resolve().parent / "zoo"


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"AVSERVE_MODEL_DIR": str(ZOO), "AVSERVE_DEVICE": "cpu"}
    with running_server(serve_command, env, tmp_path_factory.mktemp("logs")) as proc:
        yield proc


def _classify(server: ServerProcess, path: Path, **form: str) -> dict[str, object]:
    with path.open("rb") as f:
        r = httpx.post(
            f"{server.url}/v1/classify", files={"file": (path.name, f)}, data=form, timeout=120
        )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _abstentions(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "avserve_pipeline_abstentions_total"
    )


@pytest.mark.parametrize(
    "name",
    [
        "mdn-ie__flower.mp4",  # a flower in the wind, with a silent audio track
        "mmaction2__demo.mp4",  # arm wrestling, no audio track at all
        "moviepy__chaplin.mp4",  # black-and-white film with music
    ],
)
def test_a_real_video_of_no_known_class_gets_unknown(
    shipped_server: ServerProcess, media_dir: Path, name: str
) -> None:
    before = _abstentions(shipped_server)
    body = _classify(shipped_server, media_dir / name)
    verdicts = body["verdicts"]
    assert isinstance(verdicts, dict) and set(verdicts) == {"avsynth"}
    v = verdicts["avsynth"]
    assert v["verdict"] == "unknown", body
    assert v["reason"] in {"no_event_found", "out_of_distribution", "missing_modality"}
    assert v["label"] is None and 0.0 <= v["ood_score"] <= 1.0
    assert _abstentions(shipped_server) == before + 1


def test_without_audio_no_sound_defined_class_scores_above_0_6(
    shipped_server: ServerProcess, media_dir: Path
) -> None:
    body = _classify(shipped_server, media_dir / "mmaction2__demo.mp4", top_k="11")
    assert body["audio"] == "absent"
    scores = {s["label"]: s["score"] for s in body["heads"]["avsynth"]}  # type: ignore[index]
    for label in ("ball_thud", "ball_chime", "spinner_rise", "spinner_fall"):
        assert scores[label] <= 0.6


def test_a_request_may_lower_the_abstention_threshold(
    shipped_server: ServerProcess, media_dir: Path
) -> None:
    body = _classify(shipped_server, media_dir / "mmaction2__test.avi", min_confidence="0")
    v = body["verdicts"]["avsynth"]  # type: ignore[index]
    assert v["min_confidence"] == 0.0
    if v["verdict"] == "unknown":  # only background or a missing modality may still refuse
        assert v["reason"] in {"no_event_found", "missing_modality"}
