"""Locust load test of the avserve gateway: uploads, URL requests and batch jobs, open loop.

Why open loop: a Locust user normally sends its next request only after the previous answer
(``constant_throughput``/``constant_pacing`` merely space those out), so a slow server slows
its own load down and queueing never shows in the latencies. Here each request kind has one
*arrival* user that draws Poisson arrivals at the profile's current rate and sends every
request in its own greenlet without waiting for earlier ones. The rate over time comes from
``ProfileShape`` (a ``LoadTestShape``), which also ends the run after a drain period.
Arrivals beyond ``max_in_flight`` per kind are recorded as failures ("client backlog"), so an
overloaded run fails its SLO instead of silently turning into a closed loop.

Configuration (set by ``python -m loadtests.run``, or by hand):
- ``AVSERVE_LOADTEST_PROFILE``: the profile as JSON (default: the ``short`` profile);
- ``AVSERVE_LOADTEST_MEDIA_DIR``: videos to upload; ``AVSERVE_LOADTEST_MEDIA``: comma list of
  their file names; ``AVSERVE_LOADTEST_MEDIA_URL``: base URL where the same files are served;
- ``AVSERVE_LOADTEST_API_KEY``: sent as ``X-API-Key`` when set;
- ``AVSERVE_LOADTEST_ARRIVALS_FILE``: where the arrivals sent per kind are written (JSON).

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 --csv out/run
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, LoadTestShape, events, task
from requests.adapters import HTTPAdapter

from loadtests.profiles import (
    JOB_DONE,
    JOB_POLL,
    JOB_SUBMIT,
    SHED_SUFFIX,
    UPLOAD,
    URL,
    Profile,
    profile_from_env,
)

PROFILE: Profile = profile_from_env()
MEDIA_DIR = Path(os.environ.get("AVSERVE_LOADTEST_MEDIA_DIR", "../shared/media"))
MEDIA = [m for m in os.environ.get("AVSERVE_LOADTEST_MEDIA", "").split(",") if m]
MEDIA_URL = os.environ.get("AVSERVE_LOADTEST_MEDIA_URL", "").rstrip("/")
API_KEY = os.environ.get("AVSERVE_LOADTEST_API_KEY")
ARRIVALS_FILE = os.environ.get("AVSERVE_LOADTEST_ARRIVALS_FILE")
JOB_POLL_S = 0.5
JOB_TIMEOUT_S = 120.0
_VIDEOS: dict[str, bytes] = {}  # uploads read once, not per request


def _video(name: str) -> bytes:
    if name not in _VIDEOS:
        _VIDEOS[name] = (MEDIA_DIR / name).read_bytes()
    return _VIDEOS[name]


def _record(
    name: str, started: float, exc: BaseException | None, request_type: str = "POST"
) -> None:
    """A request outcome Locust did not time itself; POST rows join the HTTP rows of ``name``."""
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=exc,
        context={},
    )


class ClientBacklogError(Exception):
    """More arrivals in flight than the profile allows: the server fell behind."""


class UnfinishedError(Exception):
    """Still in flight when the run ended (after the drain)."""


class ArrivalUser(HttpUser):
    """One per request kind: Poisson arrivals at the profile's rate, each in its own greenlet."""

    abstract = True
    fixed_count = 1
    kind = ""
    name = ""

    def on_start(self) -> None:
        # One pooled connection per concurrent request (requests' default pool keeps 10).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=PROFILE.max_in_flight)
        self.client.mount("http://", adapter)
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.in_flight: dict[gevent.Greenlet, float] = {}
        self.sent = 0
        _ALL_USERS.append(self)
        self.next_at = time.perf_counter()

    @task
    def arrivals(self) -> None:
        shape = self.environment.shape_class
        rate = PROFILE.rate_at(shape.get_run_time() if shape else 0.0) or 0.0
        share = rate * PROFILE.mix.get(self.kind, 0.0)
        if share <= 0:
            gevent.sleep(0.1)
            self.next_at = time.perf_counter()
            return
        # Absolute schedule: the time spent spawning never delays the next arrival.
        self.next_at += random.expovariate(share)
        gevent.sleep(max(0.0, self.next_at - time.perf_counter()))
        if _STOPPING:  # the arrivals are counted: one sent now would be counted nowhere
            return
        if len(self.in_flight) >= PROFILE.max_in_flight:
            _record(self.name, time.perf_counter(), ClientBacklogError("client backlog full"))
            return
        g = gevent.spawn(self._guarded, self.send)
        self.in_flight[g] = time.perf_counter()
        self.sent += 1
        g.link(lambda done: self.in_flight.pop(done, None))

    def _guarded(self, fn: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            fn()
        except Exception as e:  # a client-side bug must show as a failure, never vanish
            _record(self.name, started, e)

    def send(self) -> None:
        raise NotImplementedError

    def _finish(self, resp: Any) -> None:
        """Judge a ``catch_response`` answer: 429 is shed load, anything but 2xx an error."""
        if resp.status_code == 429:
            resp.request_meta["name"] = self.name + SHED_SUFFIX
            resp.success()
        elif 200 <= resp.status_code < 300:
            resp.success()
        else:
            resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")


class UploadUser(ArrivalUser):
    kind = "upload"
    name = UPLOAD

    def send(self) -> None:
        media = random.choice(MEDIA)
        with self.client.post(
            "/v1/classify",
            files={"file": (media, _video(media))},
            data={"policy": PROFILE.policy},
            name=self.name,
            catch_response=True,
        ) as resp:
            self._finish(resp)


class UrlUser(ArrivalUser):
    kind = "url"
    name = URL

    def send(self) -> None:
        url = f"{MEDIA_URL}/{random.choice(MEDIA)}"
        with self.client.post(
            "/v1/classify",
            json={"url": url, "policy": PROFILE.policy},
            name=self.name,
            catch_response=True,
        ) as resp:
            self._finish(resp)


class JobUser(ArrivalUser):
    """Submits a job of ``job_items`` URLs, then polls it; records submit→done as one row."""

    kind = "job"
    name = JOB_SUBMIT

    def send(self) -> None:
        started = time.perf_counter()
        items = [{"url": f"{MEDIA_URL}/{random.choice(MEDIA)}"} for _ in range(PROFILE.job_items)]
        with self.client.post(
            "/v1/jobs",
            json={"items": items, "policy": PROFILE.policy},
            name=self.name,
            catch_response=True,
        ) as resp:
            self._finish(resp)
            if resp.status_code != 202:
                return
            job_id = resp.json()["id"]
        while time.perf_counter() - started < JOB_TIMEOUT_S:
            gevent.sleep(JOB_POLL_S)
            with self.client.get(f"/v1/jobs/{job_id}", name=JOB_POLL, catch_response=True) as r:
                self._finish(r)
                if r.status_code != 200:
                    _record(JOB_DONE, started, RuntimeError(f"poll HTTP {r.status_code}"), "JOB")
                    return
                job = r.json()
            if job["status"] in ("done", "failed", "cancelled"):
                p = job["progress"]
                ok = job["status"] == "done" and p["failed"] == 0
                why = None if ok else RuntimeError(f"job {job['status']}, {p['failed']} failed")
                _record(JOB_DONE, started, why, "JOB")
                return
        _record(JOB_DONE, started, TimeoutError(f"job not done after {JOB_TIMEOUT_S:.0f} s"), "JOB")


USER_CLASSES = (UploadUser, UrlUser, JobUser)
_ALL_USERS: list[ArrivalUser] = []
_STOPPING = False


@events.test_stopping.add_listener
def _count_unfinished(**_: Any) -> None:
    """Whatever is still in flight after the drain counts as failed, not as never sent.

    Called by the shape before it ends the run (so the final CSV has these rows); the
    ``test_stopping`` hook covers a run stopped otherwise (Ctrl-C, ``--run-time``).
    """
    global _STOPPING
    _STOPPING = True  # no arrival after this count (a draw may still be sleeping)
    if ARRIVALS_FILE:  # what was sent, to set against what was answered
        counts = {u.kind: u.sent for u in _ALL_USERS}
        Path(ARRIVALS_FILE).write_text(json.dumps(counts))
    for user in _ALL_USERS:
        unfinished = list(user.in_flight.items())
        user.in_flight.clear()
        for g, started in unfinished:
            _record(user.name, started, UnfinishedError("no answer by the end of the run"))
            g.kill(block=False)


class ProfileShape(LoadTestShape):
    """One arrival user per kind for the profile's stages and drain, then stop.

    After the drain, whatever is still in flight is recorded as failed and the run lasts
    ``SETTLE_S`` longer: Locust writes its CSV files once a second and not again at exit, so
    records made in the last second would be missing from the CSV the SLO checker reads.
    """

    SETTLE_S = 2.5
    ended_at: float | None = None

    def tick(self) -> tuple[int, float] | None:
        users = len(USER_CLASSES)  # fixed_count = 1 each; a kind with no share idles
        now = self.get_run_time()
        if PROFILE.rate_at(now) is not None:
            return users, float(users)
        if self.ended_at is None:
            self.ended_at = now
            _count_unfinished()
        return (users, float(users)) if now - self.ended_at < self.SETTLE_S else None
