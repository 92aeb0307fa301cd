"""``service.heap.startup_heap``: no cyclic collections while starting, a frozen heap after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service.heap import startup_heap


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_collector_is_off_inside_and_back_on_after() -> None:
    gc.enable()
    with startup_heap():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_alive_at_the_end_of_start_up_are_frozen() -> None:
    gc.unfreeze()
    with startup_heap():
        kept = [[i] for i in range(1000)]
    assert gc.get_freeze_count() >= len(kept)


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with startup_heap():
        pass
    assert not gc.isenabled()


def test_an_error_during_start_up_still_restores_the_collector() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), startup_heap():
        raise RuntimeError("model failed to load")
    assert gc.isenabled()
