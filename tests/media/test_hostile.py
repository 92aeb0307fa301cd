"""Crafted hostile inputs are refused with typed errors, without touching anything else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from service.errors import MediaError
from service.media import (
    ClipSpec,
    ClipWindow,
    DecodePool,
    MediaPolicy,
    SnippetSpec,
    center_box,
    probe,
    read_clips,
    read_snippets,
)
from service.media.policy import DEFAULT_FORMATS
from tests.media.hostile import (
    FifoTripwire,
    concat_script,
    gab2_subtitle,
    hls_playlist,
    jpeg_frame,
    raw_h264_with_size,
    with_sof_size,
    write_avi,
)
from tests.media.synth import write_video

POLICY = MediaPolicy()


def decode_all(path: Path, policy: MediaPolicy = POLICY) -> None:
    """Probe, then read snippets and a clip: the whole path a request takes."""
    info = probe(path, policy)
    read_snippets(path, info, SnippetSpec(num_snippets=4, frame_size=32), policy)
    spec = ClipSpec(num_frames=4, crop_size=32)
    read_clips(path, info, [ClipWindow(0.0, center_box(info, 32, 32))], spec, policy)


@pytest.mark.parametrize(
    "policy", [POLICY, replace(POLICY, allowed_formats=(*DEFAULT_FORMATS, "hls"))]
)
def test_hls_playlist_pointing_at_a_local_file_is_refused_unread(
    tmp_path: Path, policy: MediaPolicy
) -> None:
    # even with hls wrongly allowed, the nested-open hook refuses to open the segment
    with FifoTripwire(tmp_path / "secret.ts") as secret:
        playlist = tmp_path / "clip.m3u8"
        playlist.write_bytes(hls_playlist(secret.path))
        with pytest.raises(MediaError) as err:
            probe(playlist, policy)
    assert err.value.code == "unsupported_container"
    assert not secret.tripped


def test_concat_script_is_refused_unread(tmp_path: Path) -> None:
    with FifoTripwire(tmp_path / "secret.mp4") as secret:
        script = tmp_path / "list.ffconcat"
        script.write_bytes(concat_script(secret.path))
        with pytest.raises(MediaError) as err:
            probe(script, POLICY)
    assert err.value.code == "unsupported_container"
    assert not secret.tripped


def test_avi_carrying_a_playlist_subtitle_never_opens_it(tmp_path: Path) -> None:
    # CVE-2017-9993: an HLS playlist hidden in an AVI GAB2 subtitle packet
    with FifoTripwire(tmp_path / "secret.txt") as secret:
        payload = gab2_subtitle(hls_playlist(secret.path))
        path = write_avi(tmp_path / "gab2.avi", [jpeg_frame()] * 10, subtitle=payload)
        decode_all(path)  # the video itself is fine and decodes
    assert not secret.tripped


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("frame", "header"),
    [
        # JPEG frame header claims 30000x30000 (1.35 GB per frame if believed)
        (with_sof_size(jpeg_frame(), 30000, 30000), 64),
        # a real, decodable 67-megapixel picture behind an 8192x8192 AVI header
        (jpeg_frame(8192, 8192), 8192),
    ],
    ids=["jpeg-30000", "real-8192"],
)
async def test_huge_pictures_are_refused_without_allocating_them(
    tmp_path: Path, frame: bytes, header: int
) -> None:
    path = write_avi(tmp_path / "bomb.avi", [frame] * 4, width=header, height=header)
    async with DecodePool(1, POLICY, memory_limit_bytes=1024**3) as pool:
        with pytest.raises(MediaError) as err:
            await pool.probe(path)
        assert err.value.code in {"too_large", "undecodable"}
        assert pool.stats.crashes == 0
        # one decoded 8192x8192 frame alone would be ~100 MB
        assert peak_rss_kib(pool.pids[0]) < 150 * 1024


def test_h264_sps_declaring_30000x30000_is_refused(tmp_path: Path) -> None:
    path = raw_h264_with_size(tmp_path / "bomb.h264", 30000, 30000)
    with pytest.raises(MediaError) as err:
        decode_all(path)
    assert err.value.code in {"too_large", "undecodable"}


def test_header_size_over_the_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write_video(tmp_path / "wide.mp4", frames=2, width=4608, height=64)
    with pytest.raises(MediaError) as err:
        probe(path, POLICY)  # 4608 > max_width 4096 although the pixel count is small
    assert err.value.code == "too_large"


def test_decoder_pixel_cap_stops_frames_larger_than_the_header_says(tmp_path: Path) -> None:
    # the AVI header says 64x64 but every JPEG is 512x512
    path = write_avi(tmp_path / "liar.avi", [jpeg_frame(512, 512)] * 4, width=64, height=64)
    small = MediaPolicy(max_pixels=128 * 128)
    with pytest.raises(MediaError) as err:
        decode_all(path, small)
    assert err.value.code in {"too_large", "undecodable"}
    decode_all(path)  # within the default cap the same file is fine


def test_absurd_duration_is_too_long_before_anything_is_decoded(tmp_path: Path) -> None:
    # ten tiny frames 10000 s apart: a 25-hour video as far as the header is concerned
    times = [k * 10_000.0 for k in range(10)]
    path = write_video(tmp_path / "long.mkv", frames=10, times_s=times)
    with pytest.raises(MediaError) as err:
        probe(path, POLICY)
    assert err.value.code == "too_long"
    assert probe(path, MediaPolicy(max_duration_s=200_000)).duration_s > 90_000


def test_too_many_streams_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "streams.mkv"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height = 32, 32
        audio = [out.add_stream("pcm_s16le", rate=8000, layout="mono") for _ in range(20)]
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*vs.encode(frame), *vs.encode()]:
            out.mux(packet)
        for stream in audio:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), "s16", "mono")
            samples.sample_rate = 8000
            for packet in [*stream.encode(samples), *stream.encode()]:
                out.mux(packet)
    with pytest.raises(MediaError) as err:
        probe(path, POLICY)
    assert err.value.code == "too_large"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\0" * 4096, "unsupported_container"),
        (b"<html><body>not a video</body></html>", "unsupported_container"),
        (b"YUV4MPEG2 W30000 H30000 F30:1\nFRAME\n", "unsupported_container"),
    ],
)
def test_non_media_bytes_are_refused(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(MediaError) as err:
        probe(path, POLICY)
    assert err.value.code == code


def test_file_over_the_byte_limit_is_refused_unopened(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ok.mp4", frames=5)
    with pytest.raises(MediaError) as err:
        probe(path, MediaPolicy(max_bytes=100))
    assert err.value.code == "too_large"
