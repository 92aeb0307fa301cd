"""The gateway's disk budget for request temp files (uploads, URL downloads) under ``tmp_dir``.

Two limits, so that a burst of large uploads is refused with 507 ``insufficient_storage``
before the volume fills (in Kubernetes: before an ``emptyDir`` limit evicts the pod):
``budget_bytes``, the bytes all classify requests in flight may have written together (each
upload or download chunk is counted before it is written), and ``min_free_bytes``, free
space always left on the volume (checked when an upload or fetch starts). Batch-job items
fetched by workers are outside it (workers have their own disk).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from service.errors import AvserveError


def _full(message: str) -> AvserveError:
    return AvserveError(message, code="insufficient_storage", retry_after_s=5)


class TmpBudget:
    def __init__(self, directory: Path | None, budget_bytes: int, min_free_bytes: int) -> None:
        self.directory = Path(directory) if directory is not None else Path(tempfile.gettempdir())
        self.budget_bytes = budget_bytes
        self.min_free_bytes = min_free_bytes
        self.used = 0  # bytes written by requests in flight (event-loop only: no lock)

    def check_free(self, need: int = 0) -> None:
        """Refuse when writing ``need`` more bytes would leave less than the free-space floor."""
        free = shutil.disk_usage(self.directory).free
        if free - need < self.min_free_bytes:
            raise _full("not enough temporary disk space for this request; retry later")

    def reserve(self, declared: int | None = None) -> Reservation:
        """Start accounting one upload (``declared``: its Content-Length, when known)."""
        if declared is not None and self.used + declared > self.budget_bytes:
            raise _full("too many uploads in flight for the temporary disk budget; retry later")
        self.check_free(declared or 0)
        return Reservation(self)


class Reservation:
    """Bytes one upload has written; give them back with ``release`` (idempotent)."""

    def __init__(self, budget: TmpBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def grow(self, n: int) -> None:
        b = self.budget
        if b.used + n > b.budget_bytes:
            raise _full("too many uploads in flight for the temporary disk budget; retry later")
        b.used += n
        self.bytes += n

    def release(self) -> None:
        self.budget.used -= self.bytes
        self.bytes = 0
