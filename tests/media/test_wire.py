"""The decode pool's data-only wire format: values round-trip, nothing executes on receipt."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import MediaError
from service.media.pool import _Worker
from service.media.types import (
    ClipBatch,
    CropBox,
    GlanceSnippets,
    MediaInfo,
    ResolvedWindow,
    StreamSummary,
    VideoStreamInfo,
)


@pytest.fixture
def pair() -> Iterator[tuple[Connection, Connection]]:
    a, b = socket.socketpair()
    ca, cb = Connection(a.detach()), Connection(b.detach())
    yield ca, cb
    ca.close()
    cb.close()


def info() -> MediaInfo:
    video = VideoStreamInfo(0, "h264", 640, 360, 640, 360, 25.0, 0, 10.0, 250)
    streams = (StreamSummary(0, "video", "h264", True, 640, 360, 25.0, selected=True),)
    return MediaInfo("mp4", 1234, 10.0, False, video, None, 1, streams)


def test_media_values_round_trip_with_writable_arrays(pair: tuple[Connection, Connection]) -> None:
    from service.media import wire

    a, b = pair
    rng = np.random.default_rng(0)
    clips = ClipBatch(
        frames=rng.integers(0, 255, (2, 4, 8, 8, 3), dtype=np.uint8),
        audio=rng.standard_normal((2, 100)).astype(np.float32),
        windows=[ResolvedWindow(0.0, 1.0, CropBox(0, 0, 8, 8), False)] * 2,
        audio_present=True,
        decoded_frames=7,
    )
    snippets = GlanceSnippets(
        times_s=np.linspace(0, 1, 4),
        frames=np.zeros((4, 2, 2, 3), np.uint8),
        audio=np.zeros((4, 0), np.float32),  # empty arrays too
        audio_present=False,
        extra={"frame_times_s": [0.0, 0.5], "seeks": 2},
    )
    for value in (info(), clips, snippets, (Path("/tmp/x.mp4"), info())):
        wire.send(a, "ok", value)
        got = wire.recv(b)
        assert got is not None and got[0] == "ok"
        back = got[1]
        assert type(back) is type(value)
        if isinstance(value, ClipBatch):
            assert np.array_equal(back.frames, value.frames) and back.frames.dtype == np.uint8
            assert np.array_equal(back.audio, value.audio)
            assert back.windows == value.windows and back.decoded_frames == 7
            back.frames[0, 0, 0, 0, 0] = 1  # writable, like unpickled arrays were
        elif isinstance(value, GlanceSnippets):
            assert back.extra == value.extra and back.audio.shape == (4, 0)
        else:
            assert back == value


class _Payload:
    """What an exploited decoder could send to a gateway that unpickles: a call on receipt."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def fake_worker(pair: tuple[Connection, Connection]) -> Iterator[tuple[_Worker, Connection]]:
    """A pool-side ``_Worker`` whose other end the test plays (a sleeping child as process)."""
    gateway, worker_end = pair
    w = _Worker.__new__(_Worker)
    w.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    w.conn, w.jobs, w.broken = gateway, 0, False
    yield w, worker_end
    w.kill()


def test_the_gateway_never_unpickles_a_worker_reply(
    fake_worker: tuple[_Worker, Connection], tmp_path: Path
) -> None:
    worker, evil = fake_worker
    marker = tmp_path / "code-ran-in-the-gateway"
    evil.send_bytes(pickle.dumps(("ok", _Payload(marker))))
    kind, _ = worker.call("probe", (Path("x.mp4"),), timeout_s=5)
    assert not marker.exists()
    assert kind == "crashed" and worker.broken  # a worker speaking garbage is replaced


def test_errors_cross_as_typed_json(fake_worker: tuple[_Worker, Connection]) -> None:
    from service.media import wire

    worker, end = fake_worker
    wire.send(end, "err", {"class": "MediaError", "code": "too_long", "message": "3 h video"})
    kind, error = worker.call("probe", (Path("x.mp4"),), timeout_s=5)
    assert kind == "err" and isinstance(error, MediaError)
    assert (error.code, error.message) == ("too_long", "3 h video")


@pytest.mark.parametrize(
    "header",
    [
        {"kind": "ok", "value": {"__type__": "Popen", "fields": {}}, "arrays": []},
        {"kind": "ok", "value": {"__array__": 0}, "arrays": [{"dtype": "object", "shape": [1]}]},
        {"kind": "ok", "value": {"__array__": 0}, "arrays": [{"dtype": "uint8", "shape": [9]}]},
    ],
    ids=["unknown-type", "object-dtype", "size-mismatch"],
)
def test_malformed_replies_are_refused(
    fake_worker: tuple[_Worker, Connection], header: dict[str, Any]
) -> None:
    worker, end = fake_worker
    end.send_bytes(json.dumps(header).encode())
    end.send_bytes(b"\x00" * 4)
    kind, _ = worker.call("probe", (Path("x.mp4"),), timeout_s=5)
    assert kind == "crashed"
