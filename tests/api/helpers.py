"""Shared helpers of the gateway tests: a tiny real model package, an in-process client, a
recording classifier (stands in for the pipeline where a test is about the HTTP layer)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch
from fastapi import FastAPI

from service.api import create_app
from service.errors import AvserveError
from service.registry import Classifier
from service.schemas import (
    ClassifyOptions,
    ClassifyResult,
    ComputeSummary,
    LabelScore,
    ModelRef,
    Priority,
    VideoSummary,
)
from service.settings import Settings


def write_tiny_package(directory: Path, name: str = "tiny", seed: int = 0) -> Path:
    """A real AVSlowFast package (the ``avslowfast_tiny`` architecture, random weights)."""
    import models
    from models.package import save_package

    torch.manual_seed(seed)
    labels = [f"{name}_label_{i}" for i in range(10)]
    return save_package(
        directory / name,
        models.build_model("avslowfast_tiny"),
        name=name,
        version="0.1",
        labels=labels,
    )


def result_for(options: ClassifyOptions, size_bytes: int) -> ClassifyResult:
    """A well-formed result that echoes what the classifier was given."""
    return ClassifyResult(
        model=ModelRef(name=options.model or "tiny", version="0.1"),
        policy=options.policy or "uniform",
        k=options.k or 1,
        heads={"kinetics": [LabelScore(label=f"bytes_{size_bytes}", index=0, score=1.0)]},
        windows=None,
        audio="absent",
        padded=False,
        early_exit=False,
        video=VideoSummary(duration_s=1.0, width=64, height=64, fps=25.0, container="mp4"),
        timings_ms={"total": 1.0},
        compute=ComputeSummary(
            gmacs=1.0,
            glance_gmacs=0.0,
            heavy_gmacs=1.0,
            dense30_gmacs=30.0,
            fraction_of_dense=1 / 30,
        ),
    )


@dataclass
class Call:
    data: bytes
    options: ClassifyOptions
    priority: Priority
    deadline: float | None


@dataclass
class RecordingClassifier:
    """Reads the file it is given (the HTTP layer's output), optionally waits or fails."""

    delay_s: float = 0.0
    error: AvserveError | None = None
    calls: list[Call] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: int = 0

    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult:
        data = path.read_bytes()
        self.calls.append(Call(data, options, priority, deadline))
        self.started.set()
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return result_for(options, len(data))


@asynccontextmanager
async def serve_in_process(
    settings: Settings, classifier: Classifier | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan, and an httpx client talking ASGI to it (no sockets)."""
    app = create_app(settings, classifier=classifier)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://avserve") as client:
            yield app, client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
