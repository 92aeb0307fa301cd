"""Decode worker process: ``python -m service.media.worker --fd N [--memory-limit BYTES]``.

Started by :class:`service.media.pool.DecodePool` as a fresh interpreter (not a fork, and not
multiprocessing's spawn, which would re-import the parent's ``__main__`` and with it torch):
it imports only numpy, PyAV and ``service.media``. It talks to the pool over an inherited
socket with ``multiprocessing.connection`` framing and the data-only ``service.media.wire``
format (never pickle): a "job" message (op, args) in, "ok" (result) or "err" (class, code,
message) out. The address-space limit (RLIMIT_AS) is set before the first job.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
from multiprocessing.connection import Connection
from typing import Any


def _limit_memory(limit: int) -> None:
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_job(op: str, args: tuple[Any, ...]) -> Any:
    """Execute one pool job in this process."""
    from service.media.clips import read_clips
    from service.media.probe import probe
    from service.media.snippets import read_snippets

    if op == "probe":
        return probe(*args)
    if op == "snippets":
        return read_snippets(*args)
    if op == "clips":
        return read_clips(*args)
    raise ValueError(f"unknown decode job {op!r}")


def _reply(conn: Connection, op: str, args: tuple[Any, ...]) -> None:
    from service.errors import AvserveError, MediaError
    from service.media import wire

    try:
        result = run_job(op, args)
    except AvserveError as e:
        wire.send(conn, "err", wire.error_value(e))
        return
    except MemoryError:
        too_big = MediaError("decoding exceeded the memory limit", code="too_large")
        wire.send(conn, "err", wire.error_value(too_big))
        return
    except Exception as e:  # a bug, not bad input: typed, and the worker keeps serving
        bug = AvserveError(f"decode worker error: {type(e).__name__}: {e}")
        wire.send(conn, "err", wire.error_value(bug))
        return
    try:
        wire.send(conn, "ok", result)
    except TypeError as e:  # encoded fully before the first byte is sent: nothing half-sent
        wire.send(conn, "err", wire.error_value(AvserveError(f"decode worker error: {e}")))


def serve(conn: Connection) -> None:
    from service.media import wire

    wire.send(conn, "ready", os.getpid())
    while True:
        try:
            message = wire.recv(conn)
        except (EOFError, OSError, wire.WireError):
            return  # the pool went away (or spoke garbage: it will replace this worker)
        assert message is not None  # no deadline: recv waits
        kind, value = message
        if kind == "stop":
            return
        if kind != "job" or not isinstance(value, dict) or not isinstance(value.get("args"), tuple):
            return
        try:
            _reply(conn, str(value.get("op")), value["args"])
        except (EOFError, OSError):
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="service.media.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--memory-limit", type=int, default=0)
    opts = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides when workers stop
    _limit_memory(opts.memory_limit)
    conn = Connection(opts.fd)
    try:
        serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
