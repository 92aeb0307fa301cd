"""Deterministic job processors for the queue tests.

Usable in-process and by worker processes (``avserve worker --processor
tests.queue.processors:scripted``). Behaviour is driven by the item URL's query string, so
one worker fleet can serve ordinary, failing and hanging items side by side:

- ``sleep=S``: take S seconds.
- ``fail=CODE``: raise ``AvserveError(code=CODE)`` every time.
- ``crash=1``: raise an unexpected exception every time (a poison item).
- ``hang_once=PATH``: the first worker to create PATH writes its pid there and hangs
  forever (to be SIGKILLed); later deliveries behave normally.
- ``flaky=PATH``: the first delivery fails with ``worker_crashed`` (creating PATH), later
  ones succeed.

The result is derived from the URL alone (plus who processed it), so tests can check every
item got its own result.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from service.errors import AvserveError
from service.queue import JobProcessor
from service.schemas import ClassifyOptions


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _claim(path: str) -> bool:
    """Create ``path`` exclusively (atomic across processes); True for the first caller."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


async def run_scripted(url: str, options: ClassifyOptions) -> dict[str, Any]:
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    if "fail" in q:
        raise AvserveError(f"scripted failure {q['fail']}", code=q["fail"])
    if "crash" in q:
        raise RuntimeError("scripted crash")
    if "hang_once" in q and _claim(q["hang_once"]):
        await asyncio.Event().wait()  # forever
    if "flaky" in q and _claim(q["flaky"]):
        raise AvserveError("scripted transient failure", code="worker_crashed")
    await asyncio.sleep(float(q.get("sleep", 0)))
    return {"url": url, "digest": url_digest(url), "pid": os.getpid(), "top_k": options.top_k}


def scripted() -> JobProcessor:
    return run_scripted


def poison() -> JobProcessor:
    async def always_fails(url: str, options: ClassifyOptions) -> dict[str, Any]:
        raise RuntimeError(f"poison item {url}")

    return always_fails


def hang() -> JobProcessor:
    async def hangs(url: str, options: ClassifyOptions) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return hangs
