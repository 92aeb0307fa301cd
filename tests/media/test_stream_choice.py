"""Several streams: the default one wins, then the largest, then the lowest index."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from service.media import MediaPolicy, probe


def write_streams(path: Path, sizes: list[tuple[int, int]], defaults: list[bool]) -> Path:
    with av.open(str(path), "w") as out:
        streams = []
        for (width, height), default in zip(sizes, defaults, strict=True):
            stream = out.add_stream("mpeg4", rate=10)
            stream.width, stream.height = width, height
            stream.disposition = av.stream.Disposition.default if default else 0
            streams.append(stream)
        for stream in streams:
            for i in range(5):
                rgb = np.zeros((stream.height, stream.width, 3), np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 10)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


@pytest.mark.parametrize(
    ("sizes", "defaults", "chosen"),
    [
        ([(64, 48), (128, 96)], [True, False], 0),  # the default flag beats size
        ([(64, 48), (128, 96)], [False, True], 1),
        ([(64, 48), (128, 96)], [True, True], 1),  # both default: the larger
        ([(64, 48), (128, 96)], [False, False], 1),
        ([(96, 64), (64, 96)], [True, True], 0),  # same area: the lower index
    ],
)
def test_video_stream_choice_is_deterministic(
    tmp_path: Path, sizes: list[tuple[int, int]], defaults: list[bool], chosen: int
) -> None:
    path = write_streams(tmp_path / "streams.mkv", sizes, defaults)
    info = probe(path, MediaPolicy())
    assert info.video.index == chosen
    assert [s.index for s in info.streams if s.selected] == [chosen]
