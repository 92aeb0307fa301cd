"""``avserve serve`` with the real pipeline, classifying the real files of ../shared/media.

Uploads go over loopback HTTP; URLs are served by a local HTTP server on loopback that the SSRF
guard lets through only because the test puts it on ``AVSERVE_FETCH__ALLOW_HOSTS``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.schemas import ClassifyResult
from tests.api.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def server(pipeline_server: ServerProcess) -> ServerProcess:
    return pipeline_server


@pytest.fixture(scope="module")
def labels(tiny_model_dir: Path) -> set[str]:
    config = json.loads((tiny_model_dir / "tiny" / "config.json").read_text())
    return {label for head in config["heads"] for label in head["labels"]}


def upload(server: ServerProcess, path: Path, **form: str) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(
            f"{server.url}/v1/classify", files={"file": (path.name, f)}, data=form, timeout=120
        )


def counter(server: ServerProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.mark.parametrize(
    ("name", "audio", "size"),
    [
        ("mdn-ie__flower.mp4", "silent", (960, 540)),  # its AAC track is all zeros
        ("mmaction2__demo.mp4", "absent", (340, 256)),
        ("decord__video_90.mov", "absent", (320, 568)),  # rotated: display size
        ("moviepy__no_duration.webm", "silent", (1280, 720)),  # silent Opus (peak 0.0)
        ("mmaction2__test.avi", "present", (320, 240)),
    ],
)
def test_uploaded_videos_are_classified(
    server: ServerProcess,
    media_dir: Path,
    labels: set[str],
    name: str,
    audio: str,
    size: tuple[int, int],
) -> None:
    resp = upload(server, media_dir / name, k="2", top_k="3")
    assert resp.status_code == 200, resp.text
    result = ClassifyResult.model_validate(resp.json())
    assert result.model.name == "tiny"
    assert result.audio == audio
    assert (result.video.width, result.video.height) == size
    (scores,) = result.heads.values()
    assert len(scores) == 3
    assert {s.label for s in scores} <= labels
    assert all(0.0 <= s.score <= 1.0 for s in scores)
    assert result.windows is not None and len(result.windows) == result.k


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("mdn-sa__guitar.ogg", 422, "no_video_stream"),
        ("torchcodec__nasa_13013.mp4.audio.mp3", 422, "no_video_stream"),
    ],
)
def test_audio_only_files_are_refused_with_a_typed_error(
    server: ServerProcess, media_dir: Path, name: str, status: int, code: str
) -> None:
    resp = upload(server, media_dir / name)
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == code


def test_garbage_and_empty_uploads_get_typed_errors(server: ServerProcess) -> None:
    garbage = httpx.post(
        f"{server.url}/v1/classify", files={"file": ("x.mp4", b"\x13\x37" * 5000)}, timeout=60
    )
    empty = httpx.post(f"{server.url}/v1/classify", files={"file": ("x.mp4", b"")}, timeout=60)
    assert garbage.status_code in (415, 422), garbage.text
    assert garbage.json()["error"]["code"] in ("unsupported_container", "undecodable")
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "empty_file"


def test_a_url_on_the_test_allow_list_is_fetched_and_classified(
    server: ServerProcess, media_server: str
) -> None:
    resp = httpx.post(
        f"{server.url}/v1/classify",
        json={"url": f"http://{media_server}/mdn-ie__flower.mp4", "policy": "uniform", "k": 2},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    result = ClassifyResult.model_validate(resp.json())
    assert result.policy == "uniform"
    # the download is a stage of the answer too, and only stages that ran are listed
    assert next(iter(result.timings_ms)) == "fetch" and result.timings_ms["fetch"] > 0
    assert result.timings_ms["total"] >= result.timings_ms["fetch"]
    assert "glance_net" not in result.timings_ms and "saliency" not in result.timings_ms
    assert counter(server, "avserve_pipeline_stage_duration_seconds_count", stage="fetch") >= 1


def test_loopback_urls_off_the_allow_list_are_forbidden(
    server: ServerProcess, media_server: str
) -> None:
    port = media_server.split(":")[1]
    for url in (f"http://localhost:{port}/mdn-ie__flower.mp4", "http://127.0.0.1:9/x.mp4"):
        resp = httpx.post(f"{server.url}/v1/classify", json={"url": url}, timeout=60)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "url_forbidden"
        assert "AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS" in resp.json()["error"]["message"]


def test_truncated_mp4_with_its_header_gets_the_truncation_error(
    server: ServerProcess, media_dir: Path, tmp_path: Path
) -> None:
    # nasa_13013.mp4 keeps its index (moov) at the end: any cut loses it, the ftyp survives
    data = (media_dir / "torchcodec__nasa_13013.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    resp = upload(server, cut)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "undecodable" and "truncated" in error["message"]


def test_concurrent_requests_all_run_through_the_batcher(
    server: ServerProcess, media_dir: Path
) -> None:
    before = counter(server, "avserve_batcher_clips_total")
    files = ["mdn-ie__flower.mp4", "mmaction2__demo.mp4", "moviepy__chaplin.mp4"] * 2
    with ThreadPoolExecutor(len(files)) as pool:
        responses = list(pool.map(lambda n: upload(server, media_dir / n, k="2"), files))
    assert [r.status_code for r in responses] == [200] * len(files)
    windows = sum(r.json()["k"] for r in responses)
    assert counter(server, "avserve_batcher_clips_total") - before == windows
    assert counter(
        server, "avserve_pipeline_stage_duration_seconds_count", stage="heavy_net"
    ) >= len(files)
    assert counter(server, "avserve_pipeline_audio_absent_total") >= 2  # demo.mp4 twice
