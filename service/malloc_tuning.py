"""glibc malloc thresholds for a process that runs a large model forward after forward.

With glibc's defaults, a freed block above the mmap threshold goes back to the kernel at once,
free memory at the top of a heap above the trim threshold is returned on the next free, and a
thread's secondary heap (64 MB each) is unmapped whole when its last block is freed. The
thresholds adapt upwards only to the largest block freed so far (at most 32 MB and twice
that), so a forward whose activations total hundreds of MB hands many of them back to the
kernel at the end of every call and page-faults them in again (zeroed) in the next one.
Measured on `avslowfast_r50_4x16` on the model thread of 2-core machines, with the defaults:
up to 45 thousand page faults per batch-1 forward (from a handful to that, process by process)
and 40-160 thousand per batch of 2; almost none with the three settings below (``benchmarks/bench_malloc.py`` writes
``bench-results/malloc_faults.json``). The shipped AVSynth model's activations are small
enough for the defaults to settle.

``retain_freed_memory`` sets, through ``mallopt`` at start-up: the mmap threshold at its 32 MB
maximum, the trim threshold, and a 64 MB top pad, which keeps an emptied secondary heap mapped
(it is deleted only when more than the pad would be freed) and lets blocks above 32 MB come
from free heap space instead of fresh mappings. The cost is memory the process keeps: up to
the trim threshold of free heap per malloc arena, i.e. the peak working set, which the next
forward needs again. The environment (``MALLOC_TOP_PAD_`` and friends) would do the same but
needs a re-exec.

No-op (returns False) where the C library is not glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
# glibc refuses a larger mmap threshold on 64-bit (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
# One secondary heap's maximum size (HEAP_MAX_SIZE on 64-bit): an emptied heap stays mapped.
TOP_PAD = 64 * 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):  # not glibc: no gnu_get_libc_version
        return None
    return libc


def retain_freed_memory(trim_threshold_mb: int) -> bool:
    """Keep freed memory up to ``trim_threshold_mb`` MB per heap instead of returning it.

    Sets glibc's mmap threshold to its maximum (32 MB), the trim threshold to
    ``trim_threshold_mb`` and the top pad to 64 MB; 0 leaves glibc's adaptive defaults alone.
    Returns whether all three were set. Call it early (before torch allocates), once per
    process.
    """
    if not 0 <= trim_threshold_mb < 2048:  # mallopt takes a C int of bytes
        raise ValueError(f"trim_threshold_mb must be in [0, 2047], got {trim_threshold_mb}")
    if trim_threshold_mb == 0:
        return False
    libc = _glibc()
    if libc is None:
        log.info("malloc tuning skipped: the C library is not glibc")
        return False
    wanted = {
        "mmap threshold": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX),
        "trim threshold": (_M_TRIM_THRESHOLD, trim_threshold_mb * 1024 * 1024),
        "top pad": (_M_TOP_PAD, TOP_PAD),
    }
    refused = [name for name, (param, value) in wanted.items() if libc.mallopt(param, value) != 1]
    if refused:
        log.warning("mallopt refused: %s", ", ".join(refused))
    return not refused
