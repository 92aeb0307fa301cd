"""Reads spread over several decoders give exactly what one decoder gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest

from service.errors import MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    CropBox,
    GlanceSnippets,
    MediaPolicy,
    SnippetSpec,
    center_box,
    gop_plan,
    probe,
    read_clips,
    read_snippets,
)
from service.media.container import Deadline
from service.media.passes import split_runs
from tests.media.test_gop_decoding import LONG_GOP, write_long_gop
from tests.media.test_shared_media import ACCEPTED, REFUSED

SERIAL = MediaPolicy(decoder_threads=1)
PARALLEL = MediaPolicy(decoder_threads=2)
SNIPPETS = SnippetSpec(num_snippets=16, frame_size=32)
CLIP = ClipSpec(num_frames=8, sampling_rate=2, crop_size=32)


@pytest.fixture(scope="module", params=sorted(LONG_GOP))
def long_gop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    codec, options = LONG_GOP[request.param]
    path = tmp_path_factory.mktemp("par") / request.param
    return write_long_gop(path, codec, options, frames=600)  # 24 s: several GOPs


def snippets_or_error(path: Path, policy: MediaPolicy) -> object:
    try:
        info = probe(path, policy)
        return read_snippets(path, info, SNIPPETS, policy)
    except MediaError as e:
        return e.code


def test_runs_cover_every_read_in_time_order_with_whole_gops_and_even_cost() -> None:
    keyframes = [0.0, 6.1, 12.2, 18.3, 24.4, 30.5, 36.6, 44.9, 53.3]
    instants = [(t + 0.5) * 60 / 16 for t in range(16)]
    cost = gop_plan.CostModel(30.0, 0.55)
    chosen = gop_plan.choose_reads(instants, keyframes, 1.875, 0.02)
    runs = split_runs(chosen, keyframes, cost, 2)
    assert len(runs) == 2
    assert sorted(runs[0] + runs[1]) == list(range(16))
    reads = {r.instant: r for r in chosen}
    gops = [{gop_plan.gop_of(keyframes, reads[i].time_s) for i in run} for run in runs]
    assert max(gops[0]) < min(gops[1])  # contiguous, no GOP read by both decoders
    # the big last GOPs go to the second run instead of leaving it two cheap reads
    assert len(runs[1]) >= 4


def test_one_gop_or_one_decoder_reads_serially(long_gop: Path) -> None:
    info = probe(long_gop, PARALLEL)
    one_gop = dataclasses.replace(SNIPPETS, num_snippets=1)
    assert read_snippets(long_gop, info, one_gop, PARALLEL).extra["decoders"] == 1
    assert read_snippets(long_gop, info, SNIPPETS, SERIAL).extra["decoders"] == 1


def test_parallel_snippets_and_clips_equal_the_serial_ones(long_gop: Path) -> None:
    info = probe(long_gop, PARALLEL)
    serial = read_snippets(long_gop, info, SNIPPETS, SERIAL)
    parallel = read_snippets(long_gop, info, SNIPPETS, PARALLEL)
    assert parallel.extra["decoders"] == 2
    np.testing.assert_array_equal(parallel.frames, serial.frames)
    np.testing.assert_array_equal(parallel.extra["frame_times_s"], serial.extra["frame_times_s"])
    np.testing.assert_array_equal(parallel.audio, serial.audio)
    assert parallel.extra["plan"] == serial.extra["plan"]

    box = CropBox(0, 0, info.video.width, info.video.height)
    windows = [ClipWindow(s, box) for s in (1.0, 9.5, 17.0, 21.0)]
    a = read_clips(long_gop, info, windows, CLIP, SERIAL)
    b = read_clips(long_gop, info, windows, CLIP, PARALLEL)
    np.testing.assert_array_equal(b.frames, a.frames)
    np.testing.assert_array_equal(b.audio, a.audio)


@pytest.mark.parametrize("name", sorted(ACCEPTED) + sorted(REFUSED))
def test_shared_files_read_the_same_or_fail_the_same_with_two_decoders(
    media_dir: Path, name: str
) -> None:
    path = media_dir / name
    serial, parallel = snippets_or_error(path, SERIAL), snippets_or_error(path, PARALLEL)
    if isinstance(serial, str) or isinstance(parallel, str):
        assert parallel == serial
        return
    assert isinstance(serial, GlanceSnippets) and isinstance(parallel, GlanceSnippets)
    np.testing.assert_array_equal(parallel.extra["frame_times_s"], serial.extra["frame_times_s"])
    np.testing.assert_array_equal(parallel.audio, serial.audio)
    if serial.decode_errors:  # concealment of corrupt packets depends on the decoder's threads
        assert parallel.decode_errors == serial.decode_errors
        return
    np.testing.assert_array_equal(parallel.frames, serial.frames)
    info = probe(path, SERIAL)
    windows = [ClipWindow(t, center_box(info, 40, 32)) for t in (0.0, info.duration_s / 2)]
    a = read_clips(path, info, windows, CLIP, SERIAL)
    b = read_clips(path, info, windows, CLIP, PARALLEL)
    np.testing.assert_array_equal(b.frames, a.frames)


def test_a_cancelled_deadline_stops_the_work_beside_it() -> None:
    parent = Deadline(60.0)
    child = parent.child()
    child.cancel()
    with pytest.raises(MediaError) as err:
        child.check()
    assert err.value.code == "cancelled"
    parent.check()  # the caller's own budget is untouched


@pytest.fixture(scope="module")
def indexed_h264(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 24 s H.264 MP4, keyframe every 2 s, index at the front: a cut-off copy still lists
    keyframes whose data is gone."""
    folder = tmp_path_factory.mktemp("cut")
    codec, options = LONG_GOP["h264.mp4"]
    plain = write_long_gop(folder / "plain.mp4", codec, {**options, "g": "50"}, frames=600)
    front = folder / "front.mp4"
    with (
        av.open(str(plain)) as src,
        av.open(str(front), "w", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return front.read_bytes()


@pytest.mark.parametrize("kept", [0.8, 0.93])
def test_a_file_cut_short_reads_or_fails_as_with_one_decoder(
    indexed_h264: bytes, tmp_path: Path, kept: float
) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(indexed_h264[: int(len(indexed_h264) * kept)])
    serial, parallel = snippets_or_error(path, SERIAL), snippets_or_error(path, PARALLEL)
    if isinstance(serial, str) or isinstance(parallel, str):
        assert (serial, parallel) == ("undecodable", "undecodable")
        return
    assert isinstance(serial, GlanceSnippets) and isinstance(parallel, GlanceSnippets)
    assert parallel.coverage == serial.coverage < 1.0
    np.testing.assert_array_equal(parallel.extra["frame_times_s"], serial.extra["frame_times_s"])
    np.testing.assert_array_equal(parallel.frames, serial.frames)
