"""service.malloc_tuning: freed activations stay in the process instead of being faulted in again.

mallopt settings are process-wide and cannot be undone, so each case runs in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.malloc_tuning import _glibc, retain_freed_memory

REPO = Path(__file__).resolve().parents[2]

# A forward's pattern on a worker thread: activations of 4-48 MB, each freed once the next
# layer's output exists (sizes of avslowfast_r50_4x16's stages at batch 1-2), repeated; the
# minor page faults of the process per repetition.
_FORWARDS = """
import json, resource, sys, threading
from service.malloc_tuning import retain_freed_memory
tuned = retain_freed_memory(int(sys.argv[1]))
import numpy as np
faults = []
def forwards():
    for _ in range(8):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        prev = np.ones(12 << 20, np.float32)
        for i in range(12):
            cur = np.ones((6, 12, 3, 6, 1)[i % 5] << 20, np.float32)
            small = np.ones(1 << 18, np.float32)
            del prev, small
            prev = cur
        del prev
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
t = threading.Thread(target=forwards)
t.start()
t.join()
print(json.dumps({"tuned": tuned, "faults": faults}))
"""


def _run(trim_mb: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _FORWARDS, str(trim_mb)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.skipif(_glibc() is None, reason="glibc's malloc only")
def test_repeated_forwards_stop_page_faulting_once_freed_memory_is_retained() -> None:
    defaults, tuned = _run(0), _run(256)
    assert defaults["tuned"] is False and tuned["tuned"] is True
    steady_defaults = defaults["faults"][3:]  # type: ignore[index]
    steady_tuned = tuned["faults"][3:]  # type: ignore[index]
    # glibc's adaptive thresholds hand part of every repetition back to the kernel ...
    assert min(steady_defaults) > 500, defaults
    # ... retained, the same memory is reused without faulting it in again.
    assert max(steady_tuned) < 50, tuned


def test_zero_leaves_the_allocator_alone_and_bad_values_are_refused() -> None:
    assert retain_freed_memory(0) is False
    with pytest.raises(ValueError, match="trim_threshold_mb"):
        retain_freed_memory(-1)
    with pytest.raises(ValueError, match="trim_threshold_mb"):
        retain_freed_memory(4096)
