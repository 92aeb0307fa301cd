"""The cyclic garbage collector around a command's start-up.

Importing torch, pydantic and FastAPI and loading a model leave several hundred thousand
long-lived container objects behind. With the collector on, each collection triggered while
they are created walks them again, and the interpreter's final collection at exit walks them
once more: on the 2-core reference machine about 0.35 s of import time and 0.5 s of exit time,
a third of a one-file ``avserve classify`` (``bench-results/startup.json``). The CLI commands
therefore start up inside ``startup_heap()``: no cyclic collections until the process is
ready, then ``gc.freeze()`` moves every survivor to the permanent generation, which later
collections and the exit skip, and the collector is switched back on for the real work.

Only the CLI uses it. Library code and tests never touch the collector: a frozen heap is
never freed, which suits a process's start-up objects but not a test session's.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_heap() -> Iterator[None]:
    """No cyclic collections inside the block; on leaving it, freeze the heap and collect again.

    Reference counting still frees everything that is not in a cycle, so memory held while
    the collector is off is bounded by the cycles start-up creates (a few MB).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
