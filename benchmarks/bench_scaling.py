"""Autoscaling you can watch: the scaling signals of a live gateway and worker under a load ramp.

Starts Redis-backed ``avserve serve`` and ``avserve worker`` processes on loopback (shipped
model, CPU), then ramps load: uploads to ``POST /v1/classify`` at rising concurrency, and batch
jobs (``POST /v1/jobs``, items fetched from a loopback media server) on both lanes. Every
``SCRAPE_S`` it scrapes both ``/metrics`` endpoints, reads the consumer groups from Redis (what
KEDA reads) and the gateway's CPU time, and computes the replicas the gateway HPA and the
worker ScaledObject would ask for (``benchmarks.scaling_rules``, targets from the manifests).
After the load it keeps scraping until every signal is back at idle.

Run: ``python -m benchmarks.bench_scaling`` (part of ``make bench``; Redis at REDIS_URL or
127.0.0.1:6379); writes bench-results/scaling.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from benchmarks import live_stack as stack
from benchmarks import scaling_rules as rules
from benchmarks.common import machine as common_machine

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results" / "scaling.json"
VIDEO = "mmaction2__demo.mp4"  # 10 s at 340x256: cheap enough that a shared box drains it
FORM = {"policy": "uniform", "k": "2"}  # same decode cost for every request
SCRAPE_S = 1.0
# (seconds, concurrent classify clients, job submissions per second); then the load stops.
PHASES = ((5, 0, 0.0), (10, 4, 0.5), (10, 16, 1.0), (15, 48, 1.0))
JOB_ITEMS = {"batch": 5, "high": 1}  # items per submitted job, by lane (every 3rd job: high)
SERVER_ENV = {
    "AVSERVE_DEVICE": "cpu",
    "AVSERVE_TORCH_THREADS": "1",  # a shared 2-core box: no OpenMP spinning
    "AVSERVE_LOG_LEVEL": "warning",
    # Requests wait rather than fail while the box is saturated: in-flight is the signal.
    "AVSERVE_REQUEST_TIMEOUT_S": "600",
}
IDLE_SCRAPES = 5  # consecutive idle scrapes that end the run
MAX_DRAIN_S = 300.0
# Exported series (after the metric renames of issue 18); the HPA's come from its manifest.
LAG, PENDING = "avserve_jobs_queue_lag", "avserve_jobs_queue_pending"
WORKER_BUSY = "avserve_jobs_items_in_flight"
LANES = {"batch": "stream:batch", "high": "stream:high"}


def _sums(text: str) -> dict[str, float]:
    """Sample sums per metric name, plus ``name{lane}`` for laned series."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
            if "lane" in s.labels:
                key = f"{s.name}{{{s.labels['lane']}}}"
                out[key] = out.get(key, 0.0) + s.value
    return out


class Run:
    def __init__(self, gateway: str, worker_metrics: str, gateway_pid: int, r: Any, prefix: str):
        self.gateway, self.worker_metrics, self.gateway_pid = gateway, worker_metrics, gateway_pid
        self.redis, self.prefix = r, prefix
        docs, self.manifests_from = rules.rendered_manifests(REPO)
        self.hpa, self.keda = rules.gateway_hpa(docs), rules.worker_keda(docs)
        self.rows: list[dict[str, Any]] = []
        self.events: dict[str, float] = {}
        self.statuses: dict[str, int] = {}
        self.t0 = time.monotonic()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def _groups(self) -> tuple[dict[str, int], dict[str, int]]:
        lag, pending = {}, {}
        for stream in LANES.values():
            with contextlib.suppress(redis.ResponseError):  # no stream yet
                for g in self.redis.xinfo_groups(f"{self.prefix}:{stream}"):
                    lag[stream] = int(g.get("lag") or 0)
                    pending[stream] = int(g["pending"])
        return lag, pending

    async def scrape(
        self, client: httpx.AsyncClient, cpu_prev: tuple[float, dict[int, float]]
    ) -> Any:
        # All three read at once; the row is stamped when the last answered.
        gw_r, wk_r, (lag, pending) = await asyncio.gather(
            client.get(f"{self.gateway}/metrics"),
            client.get(self.worker_metrics),
            asyncio.to_thread(self._groups),
        )
        t = self.now()
        gw, wk = _sums(gw_r.text), _sums(wk_r.text)
        cpu_now = (time.monotonic(), stack.cpu_seconds(self.gateway_pid))
        cores = stack.cores(cpu_prev, cpu_now)
        totals = {name: gw.get(name, 0.0) for name in self.hpa.pod_targets}
        current = self.hpa.min_replicas  # the idle replica count the load arrives at
        row = {
            "t_s": t,
            **{name: totals[name] for name in totals},
            "gateway_cpu_cores": round(cores, 3),
            **{f"redis_lag_{lane}": lag.get(s, 0) for lane, s in LANES.items()},
            **{f"redis_pending_{lane}": pending.get(s, 0) for lane, s in LANES.items()},
            **{f"{LAG}_{lane}": gw.get(f"{LAG}{{{lane}}}", 0.0) for lane in LANES},
            **{f"{PENDING}_{lane}": gw.get(f"{PENDING}{{{lane}}}", 0.0) for lane in LANES},
            WORKER_BUSY: wk.get(WORKER_BUSY, 0.0),
            "hpa_current": current,
            "hpa_desired": self.hpa.desired(current, totals, cores),
            "keda_desired": self.keda.desired(lag, pending),
        }
        self.rows.append(row)
        return cpu_now, row

    def idle(self, row: dict[str, Any]) -> bool:
        keys = [*self.hpa.pod_targets, WORKER_BUSY]
        keys += [k for k in row if k.startswith(("redis_", LAG, PENDING))]
        return all(row[k] == 0 for k in keys)


async def classify_client(run: Run, client: httpx.AsyncClient, video: bytes, stop: asyncio.Event):
    while not stop.is_set():
        r = await client.post(
            f"{run.gateway}/v1/classify", files={"file": (VIDEO, video)}, data=FORM, timeout=300
        )
        run.statuses[f"classify {r.status_code}"] = (
            run.statuses.get(f"classify {r.status_code}", 0) + 1
        )


async def submit_job(run: Run, client: httpx.AsyncClient, media: str, lane: str) -> None:
    items = [{"url": f"http://{media}/{VIDEO}"}] * JOB_ITEMS[lane]
    body = {
        "items": items,
        "priority": lane,
        **{k: (int(v) if v.isdigit() else v) for k, v in FORM.items()},
    }
    r = await client.post(f"{run.gateway}/v1/jobs", json=body, timeout=60)
    run.statuses[f"jobs {r.status_code}"] = run.statuses.get(f"jobs {r.status_code}", 0) + 1


async def drive(run: Run, media: str, video: bytes) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits) as client:
        cpu = (time.monotonic(), stack.cpu_seconds(run.gateway_pid))
        load_over = False
        idle_streak = 0

        async def scraper() -> None:
            nonlocal cpu, idle_streak
            while True:
                cpu, row = await run.scrape(client, cpu)
                idle_streak = idle_streak + 1 if load_over and run.idle(row) else 0
                await asyncio.sleep(SCRAPE_S - (time.monotonic() - run.t0) % SCRAPE_S)

        scraping = asyncio.create_task(scraper())
        clients: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        jobs: list[asyncio.Task[None]] = []
        submitted = 0
        for i, (seconds, concurrency, job_rate) in enumerate(PHASES):
            run.events[f"phase{i}_start"] = run.now()
            while len(clients) < concurrency:
                ev = asyncio.Event()
                clients.append((asyncio.create_task(classify_client(run, client, video, ev)), ev))
            end = time.monotonic() + seconds
            next_job = time.monotonic()
            while time.monotonic() < end:
                if job_rate and time.monotonic() >= next_job:
                    lane = "high" if submitted % 3 == 2 else "batch"
                    run.events.setdefault(f"first_job_{lane}", run.now())
                    jobs.append(asyncio.create_task(submit_job(run, client, media, lane)))
                    submitted += 1
                    next_job += 1 / job_rate
                await asyncio.sleep(0.05)
        run.events["load_stop"] = run.now()
        for _, ev in clients:
            ev.set()
        await asyncio.gather(*(task for task, _ in clients), *jobs)
        run.events["last_response"] = run.now()
        load_over = True
        deadline = time.monotonic() + MAX_DRAIN_S
        while idle_streak < IDLE_SCRAPES and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        run.events["idle" if idle_streak >= IDLE_SCRAPES else "drain_timeout"] = run.now()
        scraping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scraping


def summarise(run: Run) -> dict[str, Any]:
    """Per signal: idle value, peak, seconds from the load that drives it to its first move,
    and from the end of that load back to idle for good."""
    signals = {name: "phase1_start" for name in run.hpa.pod_targets}
    for lane in LANES:
        for prefix in ("redis_lag", "redis_pending", LAG, PENDING):
            signals[f"{prefix}_{lane}"] = f"first_job_{lane}"
    signals[WORKER_BUSY] = "first_job_batch"
    starts = run.events
    out = {}
    for name, cause in signals.items():
        series = [(r["t_s"], r[name]) for r in run.rows]
        before = [v for t, v in series if t < starts[cause]]
        rise = next((t for t, v in series if t >= starts[cause] and v > 0), None)
        last_busy = max((t for t, v in series if v > 0), default=None)
        back = next((t for t, v in series if last_busy is not None and t > last_busy), None)
        out[name] = {
            "idle_before": max(before, default=0),
            "peak": max((v for _, v in series), default=0),
            "first_rise_after_s": None if rise is None else round(rise - starts[cause], 2),
            "idle_again_after_load_s": None
            if back is None
            else round(back - run.events["load_stop"], 2),
            "idle_again_after_last_response_s": None
            if back is None
            else round(back - run.events["last_response"], 2),
            "idle_at_end": series[-1][1] == 0 if series else None,
        }
        rise_s = out[name]["first_rise_after_s"]
        out[name]["rose_within_one_prometheus_scrape"] = (
            rise_s is not None and rise_s <= prometheus_scrape_s()
        )
    return out


def prometheus_scrape_s() -> float:
    """The scrape interval the shipped PodMonitor asks for (deploy/observability)."""
    path = REPO / "deploy" / "observability" / "podmonitor.yaml"
    endpoints = yaml.safe_load(path.read_text())["spec"]["podMetricsEndpoints"]
    return max(float(str(e.get("interval", "30s")).rstrip("s")) for e in endpoints)


def main() -> None:
    media_dir = stack.shared_media()
    video = (media_dir / VIDEO).read_bytes()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"avserve-bench-scaling:{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    loadavg_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp, stack.media_server(media_dir) as media:
        port, wport = stack.free_port(), stack.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AVSERVE_", "OTEL_"))}
        env |= SERVER_ENV | {
            "PYTHONPATH": str(REPO),
            "REDIS_URL": redis_url,
            "AVSERVE_QUEUE__PREFIX": prefix,
            "AVSERVE_TMP_DIR": tmp,
            "AVSERVE_FETCH__ALLOW_HOSTS": json.dumps([media]),
        }
        logs = Path(tmp)
        gateway = stack.start(["serve", "--port", str(port)], env, logs / "gateway.log")
        worker = stack.start(
            ["worker", "--metrics-port", str(wport), "--health-file", str(logs / "hb")],
            env,
            logs / "worker.log",
        )
        try:
            url = f"http://127.0.0.1:{port}"
            stack.wait_up(gateway, f"{url}/v2/health/ready", logs / "gateway.log")
            stack.wait_up(worker, f"http://127.0.0.1:{wport}/metrics", logs / "worker.log")
            run = Run(url, f"http://127.0.0.1:{wport}/metrics", gateway.pid, r, prefix)
            asyncio.run(drive(run, media, video))
        finally:
            stack.stop(gateway)
            stack.stop(worker)
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                r.delete(*keys)
    report(run, loadavg_start)


def report(run: Run, loadavg_start: list[float]) -> None:
    summary = summarise(run)
    info = {
        **common_machine(),
        "loadavg_at_start": loadavg_start,
        "loadavg_at_end": list(os.getloadavg()),
    }
    result = {
        "machine": info,
        "shared_machine": "2 cores shared with other jobs: latencies are not a capacity figure",
        "video": VIDEO,
        "form": FORM,
        "server_env": SERVER_ENV,
        "job_items": JOB_ITEMS,
        "phases": [{"seconds": s, "classify_clients": c, "jobs_per_s": j} for s, c, j in PHASES],
        "scrape_interval_s": SCRAPE_S,
        "prometheus_scrape_interval_s": prometheus_scrape_s(),
        "manifests": run.manifests_from,
        "hpa": {**vars(run.hpa), "pod_targets": dict(run.hpa.pod_targets)},
        "keda": {**vars(run.keda), "triggers": [vars(t) for t in run.keda.triggers]},
        "events_s": run.events,
        "responses": run.statuses,
        "summary": summary,
        "timeline": run.rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    console = Console()
    table = Table(title="Scaling signals under a load ramp (gateway sums; Redis groups; replicas)")
    cols = [
        "t s",
        "in flight",
        "batcher",
        "lag b/h",
        "pending b/h",
        "worker busy",
        "cpu",
        "HPA",
        "KEDA",
    ]
    for c in cols:
        table.add_column(c, justify="right")
    names = list(run.hpa.pod_targets)
    for row in run.rows:
        table.add_row(
            f"{row['t_s']:.0f}",
            f"{row[names[0]]:.0f}",
            f"{row[names[1]]:.0f}" if len(names) > 1 else "",
            f"{row['redis_lag_batch']}/{row['redis_lag_high']}",
            f"{row['redis_pending_batch']}/{row['redis_pending_high']}",
            f"{row[WORKER_BUSY]:.0f}",
            f"{row['gateway_cpu_cores']:.2f}",
            str(row["hpa_desired"]),
            str(row["keda_desired"]),
        )
    console.print(table)
    console.print(json.dumps(summary, indent=1))
    console.print(f"events: {run.events}; responses: {run.statuses}")
    console.print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
