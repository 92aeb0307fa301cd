"""Worker liveness from the event loop's own heartbeat (``avserve worker --check``).

A task on the worker's event loop rewrites a small file every heartbeat interval; the
Kubernetes liveness probe runs ``avserve worker --check``, which fails once the file is older
than a few intervals. Only a loop that still runs its tasks keeps the file fresh: a blocked or
wedged loop is caught, which a TCP port answered from another thread cannot tell. This is
arq's health-check key in a local file, so a Redis outage does not restart healthy workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

DEFAULT_HEALTH_FILE = Path(tempfile.gettempdir()) / "avserve-worker.heartbeat"
MISSED_BEATS = 3  # a file older than this many intervals means the loop stopped


def write_beat(path: Path, interval_s: float) -> None:
    """Record one heartbeat (atomically: the probe never reads half a file)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    beat = {"at": time.time(), "interval_s": interval_s, "pid": os.getpid()}
    partial.write_text(json.dumps(beat), encoding="utf-8")
    os.replace(partial, path)


async def heartbeat(path: Path, interval_s: float) -> None:
    """Beat every ``interval_s`` until cancelled; the file is removed on the way out."""
    try:
        while True:
            write_beat(path, interval_s)
            await asyncio.sleep(interval_s)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def check(path: Path, now: float | None = None) -> str | None:
    """None when the heartbeat at ``path`` is fresh, else why the worker counts as dead."""
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        at, interval_s = float(beat["at"]), float(beat["interval_s"])
    except FileNotFoundError:
        return f"no heartbeat file at {path} (worker not started, or stopped)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable heartbeat file {path}: {exc}"
    age = (time.time() if now is None else now) - at
    if age > MISSED_BEATS * interval_s:
        return f"last heartbeat {age:.1f}s ago (beats every {interval_s:g}s): event loop stalled"
    return None
