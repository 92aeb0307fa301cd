"""Crafted hostile inputs (built byte by byte) and a tripwire that notices file access."""

from __future__ import annotations

import os
import struct
import threading
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np


class FifoTripwire:
    """A named pipe that records whether anything ever opened it for reading.

    Opening a FIFO for writing with O_NONBLOCK succeeds only while a reader has it open, and a
    reader's open() blocks until a writer shows up, so polling never misses a reader.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                self._stop.wait(0.002)
                continue
            self.tripped = True
            os.close(fd)  # the reader sees EOF and moves on
            return

    def __enter__(self) -> FifoTripwire:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(1.0)


def hls_playlist(target: Path) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\nfile://{target}\n#EXT-X-ENDLIST\n"
    ).encode()


def concat_script(target: Path) -> bytes:
    return f"ffconcat version 1.0\nfile '{target}'\nduration 10\n".encode()


def jpeg_frame(width: int = 64, height: int = 64) -> bytes:
    """One real baseline JPEG, made with FFmpeg's MJPEG encoder."""
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    rgb = np.full((height, width, 3), 120, np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def with_sof_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header (SOF0) claiming another size."""
    at = jpeg.index(b"\xff\xc0")
    data = bytearray(jpeg)
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def _chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def gab2_subtitle(payload: bytes) -> bytes:
    """A GAB2 subtitle packet (the AVI feature behind CVE-2017-9993) carrying ``payload``."""
    desc = "x".encode("utf-16-le")
    return (
        b"GAB2\0"
        + struct.pack("<H", 2)
        + struct.pack("<I", len(desc))
        + desc
        + struct.pack("<H", 4)
        + struct.pack("<I", len(payload))
        + payload
    )


def write_avi(
    path: Path,
    frames: list[bytes],
    *,
    width: int = 64,
    height: int = 64,
    subtitle: bytes | None = None,
) -> Path:
    """An MJPEG AVI, optionally with a text stream whose single packet is ``subtitle``."""
    streams = 2 if subtitle is not None else 1
    avih = struct.pack(
        "<IIIIIIIIII16x", 40000, 0, 0, 0x10, len(frames), 0, streams, 0, width, height
    )
    vids = _chunk(
        b"strh",
        struct.pack("<4s4sIHHIIIIIIII4h", b"vids", b"MJPG", 0, 0, 0, 0, 1, 25, 0,
                    len(frames), 0, 0, 0, 0, 0, width, height),
    ) + _chunk(
        b"strf",
        struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3,
                    0, 0, 0, 0),
    )  # fmt: skip
    strls = _list(b"strl", vids)
    if subtitle is not None:
        txts = _chunk(
            b"strh",
            struct.pack("<4s4sIHHIIIIIIII4h", b"txts", b"\0\0\0\0", 0, 0, 0, 0, 1, 25, 0, 1,
                        0, 0, 0, 0, 0, 0, 0),
        ) + _chunk(b"strf", b"\0" * 4)  # fmt: skip
        strls += _list(b"strl", txts)
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) + strls)
    movi_chunks = [(b"00dc", f) for f in frames]
    if subtitle is not None:
        movi_chunks.insert(0, (b"01tx", subtitle))
    body, index, offset = b"", b"", 4
    for ckid, data in movi_chunks:
        chunk = _chunk(ckid, data)
        index += struct.pack("<4sIII", ckid, 0x10, offset, len(data))
        body += chunk
        offset += len(chunk)
    movi = _list(b"movi", body)
    riff = b"AVI " + hdrl + movi + _chunk(b"idx1", index)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos : self.pos + n] or "0", 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        return self.u(zeros + 1) - 1


def _ue(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def sps_with_size(sps_nal: bytes, width: int, height: int) -> bytes:
    """Rewrite an H.264 SPS (baseline/main, as libx264 writes them) to declare another size."""
    bits = _Bits(_unescape(sps_nal))
    bits.u(8)  # NAL header
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # sps id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        if bits.ue() == 3:  # chroma_format_idc
            bits.u(1)
        bits.ue()
        bits.ue()
        bits.u(1)
        if bits.u(1):
            raise ValueError("scaling matrices are not supported here")
    bits.ue()  # log2_max_frame_num
    if bits.ue() == 0:  # pic_order_cnt_type
        bits.ue()
    bits.ue()  # max_num_ref_frames
    bits.u(1)
    head = bits.bits[: bits.pos]
    bits.ue()
    bits.ue()
    tail = bits.bits[bits.pos :]
    body = head + _ue(width // 16 - 1) + _ue(height // 16 - 1)
    # drop the old trailing bits, keep the flags that follow, re-align with a stop bit
    rest = tail.rstrip("0")[:-1]
    stream = body + rest + "1"
    stream += "0" * (-len(stream) % 8)
    return _escape(int(stream, 2).to_bytes(len(stream) // 8, "big"))


def raw_h264_with_size(path: Path, width: int, height: int) -> Path:
    """A real 64x48 Annex-B H.264 stream whose SPS claims ``width``x``height``."""
    tmp = path.with_suffix(".orig.h264")
    with av.open(str(tmp), "w", format="h264") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "profile": "baseline"}
        for i in range(10):
            rgb = np.full((48, 64, 3), 10 * i, np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    data = tmp.read_bytes()
    tmp.unlink()
    start = data.index(b"\x00\x00\x00\x01\x67") + 4
    end = data.index(b"\x00\x00\x00\x01", start)
    path.write_bytes(data[:start] + sps_with_size(data[start:end], width, height) + data[end:])
    return path
