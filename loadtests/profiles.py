"""Load profiles: arrival-rate stages, the request mix, and the SLOs a run is judged by.

A profile is data, shared by the locustfile (which paces arrivals by it) and the SLO checker
(which judges Locust's CSV by it). The runner passes the chosen one to Locust as JSON in
``AVSERVE_LOADTEST_PROFILE``; ``--rate`` scales every stage so the same shape fits any machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

PROFILE_ENV = "AVSERVE_LOADTEST_PROFILE"

# Request names as they appear in Locust's stats (one row each). A 429 answer is recorded
# under the request's name plus SHED_SUFFIX, as a success: shedding load is the intended
# answer of a full server, and a separate row keeps those fast answers out of the latency
# percentiles of the served requests.
UPLOAD = "POST /v1/classify (upload)"
URL = "POST /v1/classify (url)"
JOB_SUBMIT = "POST /v1/jobs"
JOB_POLL = "GET /v1/jobs/{id}"
JOB_DONE = "job submitted→done"
SHED_SUFFIX = " [429 shed]"


@dataclass(frozen=True)
class Stage:
    duration_s: float
    rate_rps: float  # mean arrivals per second over all request kinds (Poisson)


@dataclass(frozen=True)
class Slo:
    """Latency limits (ms) of one request name; None = not checked."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    stages: tuple[Stage, ...]
    # Share of arrivals per kind: "upload", "url", "job" (a job lists `job_items` URLs).
    mix: dict[str, float]
    slos: dict[str, Slo]
    max_error_rate: float = 0.0  # failures / non-shed requests
    job_items: int = 2
    policy: str = "glance"
    max_in_flight: int = 128  # arrivals beyond this are failures ("client backlog"), not queued
    drain_s: float = 20.0  # no arrivals; lets requests in flight at the last stage finish

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages) + self.drain_s

    def scaled(self, peak_rps: float) -> Profile:
        """The same shape with its highest stage at ``peak_rps``."""
        top = max(s.rate_rps for s in self.stages)
        k = peak_rps / top if top > 0 else 0.0
        return replace(self, stages=tuple(replace(s, rate_rps=s.rate_rps * k) for s in self.stages))

    def rate_at(self, t: float) -> float | None:
        """Arrival rate at ``t`` seconds into the run; 0 while draining, None once over."""
        for s in self.stages:
            if t < s.duration_s:
                return s.rate_rps
            t -= s.duration_s
        return 0.0 if t < self.drain_s else None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls(
            **{
                **d,
                "stages": tuple(Stage(**s) for s in d["stages"]),
                "slos": {k: Slo(**v) for k, v in d["slos"].items()},
            }
        )


def _short() -> Profile:
    # ~60 s: a warm-up step, the sustained rate, then the drain. Rates are scaled by the
    # runner's --rate. The limits are sized for the 2-core reference machine, where one short
    # video alone takes 1-4 s through the glance path: p50 within a few such requests of
    # queueing, the tail within one backlog of the sustained rate.
    return Profile(
        name="short",
        stages=(Stage(10, 0.5), Stage(35, 1.0)),
        mix={"upload": 0.6, "url": 0.3, "job": 0.1},
        slos={
            UPLOAD: Slo(p50_ms=5000, p95_ms=12000, p99_ms=15000),
            URL: Slo(p50_ms=5000, p95_ms=12000, p99_ms=15000),
            JOB_SUBMIT: Slo(p95_ms=1000),
            JOB_DONE: Slo(p95_ms=30000),
        },
        drain_s=15.0,
    )


def _smoke() -> Profile:
    # A few arrivals of each kind: proves the whole path works (tests), judges errors only.
    loose = Slo(p99_ms=60000)
    return Profile(
        name="smoke",
        stages=(Stage(8, 0.6),),
        mix={"upload": 0.4, "url": 0.3, "job": 0.3},
        slos={UPLOAD: loose, URL: loose, JOB_DONE: loose},
        job_items=1,
        drain_s=25.0,
    )


PROFILES = {"short": _short, "smoke": _smoke}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]()
    except KeyError:
        raise SystemExit(f"unknown load profile {name!r}; known: {sorted(PROFILES)}") from None


def profile_from_env() -> Profile:
    raw = os.environ.get(PROFILE_ENV)
    return Profile.from_dict(json.loads(raw)) if raw else get_profile("short")
