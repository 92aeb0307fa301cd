"""The decode pool's wire format: data only, never pickle.

Decode workers parse untrusted media; if a decoder were ever exploited, an unpickling
gateway would hand the attacker code execution. So a message is a JSON header followed by
one raw message per numpy array:

    {"kind": "ok", "value": <tree>, "arrays": [{"dtype": "uint8", "shape": [4, 32, ...]}, ...]}

In ``value`` an array is ``{"__array__": i}``, a tuple ``{"__tuple__": [...]}``, a path
``{"__path__": "..."}``, a dict ``{"__map__": {...}}`` and one of the media value types
``{"__type__": "ClipBatch", "fields": {...}}`` (only the names in ``_TYPES``: nothing else can
be built). Arrays are received straight into writable buffers of the announced size (numeric
dtypes only, sizes checked). Errors cross as ``{"class", "code", "message"}`` and become a
typed ``AvserveError`` subclass from a fixed list. Anything else is a ``WireError``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from multiprocessing import BufferTooShort
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from service.errors import AvserveError, CapacityError, FetchError, MediaError
from service.media.policy import MediaPolicy
from service.media.types import (
    AudioStreamInfo,
    ClipBatch,
    ClipSpec,
    ClipWindow,
    CropBox,
    GlanceSnippets,
    MediaInfo,
    ResolvedWindow,
    SnippetSpec,
    StreamSummary,
    VideoStreamInfo,
)

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        AudioStreamInfo,
        ClipBatch,
        ClipSpec,
        ClipWindow,
        CropBox,
        GlanceSnippets,
        MediaInfo,
        MediaPolicy,
        ResolvedWindow,
        SnippetSpec,
        StreamSummary,
        VideoStreamInfo,
    )
}
_ERRORS: dict[str, type[AvserveError]] = {
    cls.__name__: cls for cls in (AvserveError, MediaError, FetchError, CapacityError)
}
_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "int32", "uint32", "int64", "float32", "float64", "bool"}
)
MAX_HEADER_BYTES = 16 * 1024 * 1024


class WireError(Exception):
    """A message that does not follow the format (a bug, or a compromised peer)."""


def _encode(obj: Any, arrays: list[np.ndarray]) -> Any:
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, Path):
        return {"__path__": str(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(x, arrays) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x, arrays) for x in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("only str dict keys cross the decode boundary")
        return {"__map__": {k: _encode(v, arrays) for k, v in obj.items()}}
    name = type(obj).__name__
    if dataclasses.is_dataclass(obj) and _TYPES.get(name) is type(obj):
        fields = {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        return {"__type__": name, "fields": fields}
    raise TypeError(f"{name} cannot cross the decode boundary")


def _decode(tree: Any, arrays: list[np.ndarray]) -> Any:
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree
    if isinstance(tree, list):
        return [_decode(x, arrays) for x in tree]
    if not isinstance(tree, dict) or len(tree) not in (1, 2):
        raise WireError("malformed value")
    if "__array__" in tree:
        index = tree["__array__"]
        if not isinstance(index, int) or not 0 <= index < len(arrays):
            raise WireError("bad array reference")
        return arrays[index]
    if "__path__" in tree and isinstance(tree["__path__"], str):
        return Path(tree["__path__"])
    if "__tuple__" in tree and isinstance(tree["__tuple__"], list):
        return tuple(_decode(x, arrays) for x in tree["__tuple__"])
    if "__map__" in tree and isinstance(tree["__map__"], dict):
        return {str(k): _decode(v, arrays) for k, v in tree["__map__"].items()}
    cls = _TYPES.get(tree.get("__type__", ""))
    fields = tree.get("fields")
    if cls is None or not isinstance(fields, dict):
        raise WireError("unknown value type")
    try:
        return cls(**{str(k): _decode(v, arrays) for k, v in fields.items()})
    except TypeError as e:
        raise WireError(f"bad fields for {cls.__name__}: {e}") from None


def error_value(error: AvserveError) -> dict[str, str]:
    cls = type(error).__name__ if type(error).__name__ in _ERRORS else "AvserveError"
    return {"class": cls, "code": error.code, "message": error.message}


def error_from(value: Any) -> AvserveError:
    if not isinstance(value, dict):
        raise WireError("malformed error")
    cls = _ERRORS.get(str(value.get("class")), AvserveError)
    code, message = value.get("code"), value.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        raise WireError("malformed error")
    return cls(message, code=code)


def send(conn: Connection, kind: str, value: Any = None) -> None:
    """Send one message (a JSON header, then one raw message per array)."""
    arrays: list[np.ndarray] = []
    tree = _encode(value, arrays)
    contiguous = [np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")) for a in arrays]
    specs = [{"dtype": a.dtype.name, "shape": list(a.shape)} for a in contiguous]
    header = json.dumps({"kind": kind, "value": tree, "arrays": specs}, allow_nan=True)
    conn.send_bytes(header.encode())
    for a in contiguous:
        conn.send_bytes(a.reshape(-1).view(np.uint8).data if a.size else b"")


def _poll(conn: Connection, deadline: float | None) -> bool:
    if deadline is None:
        return True
    return conn.poll(max(0.0, deadline - time.monotonic()))


def recv(conn: Connection, deadline: float | None = None) -> tuple[str, Any] | None:
    """Receive one message as (kind, value); None when ``deadline`` (monotonic) passed first.

    Raises ``WireError`` for anything malformed, EOFError/OSError when the peer is gone.
    """
    if not _poll(conn, deadline):
        return None
    try:
        header = json.loads(conn.recv_bytes(MAX_HEADER_BYTES))
    except (ValueError, UnicodeDecodeError) as e:
        raise WireError(f"unreadable header: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise WireError("malformed header")
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise WireError("malformed array list")
    arrays = []
    for spec in specs:
        dtype, shape = _spec(spec)
        nbytes = math.prod(shape) * dtype.itemsize
        buf = bytearray(nbytes)
        if not _poll(conn, deadline):
            return None
        try:
            got = conn.recv_bytes_into(buf) if nbytes else len(conn.recv_bytes(1))
        except BufferTooShort:
            raise WireError("array larger than its header says") from None
        if got != nbytes:
            raise WireError("array size does not match its header")
        arrays.append(np.frombuffer(buf, dtype=dtype).reshape(shape))
    return header["kind"], _decode(header.get("value"), arrays)


def _spec(spec: Any) -> tuple[np.dtype[Any], list[int]]:
    if not isinstance(spec, dict) or spec.get("dtype") not in _DTYPES:
        raise WireError("array dtype not allowed")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise WireError("bad array shape")
    return np.dtype(spec["dtype"]), shape
