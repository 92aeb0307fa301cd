"""Completion callbacks: SSRF guard, pinned connection, retries with backoff, once per job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.errors import FetchError
from service.queue.callbacks import CallbackSender, PublicAddressGuard
from tests.queue.conftest import ServiceFactory, client_for, fast_config, item_urls, wait_for
from tests.queue.http_sink import HttpSink
from tests.queue.processors import run_scripted

LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "http://100.64.0.1/hook",
    ],
)
async def test_guard_refuses_non_public_addresses(url: str) -> None:
    with pytest.raises(FetchError) as info:
        await PublicAddressGuard()(url)
    assert info.value.code == "url_forbidden"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/", "http:///x"])
async def test_guard_refuses_malformed_urls(url: str) -> None:
    with pytest.raises(FetchError) as info:
        await PublicAddressGuard()(url)
    assert info.value.code == "url_invalid"


async def test_guard_accepts_public_and_allow_listed_addresses() -> None:
    public = await PublicAddressGuard()("https://8.8.8.8/hook")
    assert (public.ip, public.port, public.scheme) == ("8.8.8.8", 443, "https")
    allowed = await PublicAddressGuard(LOOPBACK)("http://localhost:9/hook")
    assert allowed.ip in ("127.0.0.1", "::1") and allowed.host == "localhost"


async def test_callback_connects_to_the_checked_address_with_the_original_host() -> None:
    async with HttpSink() as sink:
        seen: list[str] = []

        async def pinning_guard(url: str) -> Any:
            seen.append(url)
            target = await PublicAddressGuard(LOOPBACK)(url.replace("hooks.example", "127.0.0.1"))
            return type(target)(url, target.scheme, "hooks.example", target.port, target.ip)

        sender = CallbackSender(fast_config(), guard=pinning_guard)
        # hooks.example does not resolve: only the guard's address can have been dialled.
        outcome = await sender.deliver(
            f"http://hooks.example:{sink.port}/hook", {"a": 1}, job_id="j1"
        )
        await sender.aclose()
    assert outcome.delivered and outcome.attempts == 1
    [req] = sink.received
    assert req.headers["host"] == f"hooks.example:{sink.port}"
    assert req.headers["x-avserve-job-id"] == "j1"
    assert req.json() == {"a": 1}


async def test_callback_retries_server_errors_with_growing_backoff() -> None:
    delays: list[float] = []

    async def no_sleep(s: float) -> None:
        delays.append(s)

    config = fast_config(
        callback_allow_networks=LOOPBACK,
        callback_backoff_s=1.0,
        callback_backoff_max_s=60.0,
        callback_retries=3,
    )
    async with HttpSink([503, 500, 200]) as sink:
        sender = CallbackSender(config, sleep=no_sleep)
        outcome = await sender.deliver(sink.url, {"x": 1}, job_id="j")
        await sender.aclose()
    assert outcome.delivered and outcome.attempts == 3 and len(sink.received) == 3
    assert len(delays) == 2
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0  # base 1 s, doubling, jitter


async def test_callback_gives_up_on_client_errors_and_after_the_retry_budget() -> None:
    config = fast_config(callback_allow_networks=LOOPBACK, callback_retries=2)
    async with HttpSink([404]) as not_found, HttpSink([503]) as down:
        sender = CallbackSender(config, sleep=lambda s: asyncio.sleep(0))
        refused = await sender.deliver(not_found.url, {}, job_id="j")
        exhausted = await sender.deliver(down.url, {}, job_id="j")
        await sender.aclose()
    assert (refused.delivered, refused.attempts, refused.error) == (False, 1, "HTTP 404")
    assert (exhausted.delivered, exhausted.attempts, exhausted.error) == (False, 3, "HTTP 503")


async def test_job_callback_is_posted_once_after_retries(make_service: ServiceFactory) -> None:
    service = await make_service(run_scripted, callback_allow_networks=LOOPBACK)
    async with HttpSink([503, 503, 200]) as sink, client_for(service) as client:
        payload = {"items": [{"url": u} for u in item_urls(3)], "callback_url": sink.url}
        job = (await client.post("/v1/jobs", json=payload)).json()
        assert job["callback"]["status"] == "waiting"

        async def delivered() -> bool:
            got = (await client.get(f"/v1/jobs/{job['id']}", params={"limit": 0})).json()
            return got["callback"]["status"] == "delivered"

        await wait_for(delivered, 10, "callback delivery")
        await asyncio.sleep(0.3)  # a second (wrong) delivery would show up here
        final = (await client.get(f"/v1/jobs/{job['id']}", params={"limit": 0})).json()
    assert final["callback"]["attempts"] == 3
    assert len(sink.received) == 3
    bodies = [r.json() for r in sink.received]
    assert all(b["event"] == "job.finished" and b["job"]["id"] == job["id"] for b in bodies)
    assert bodies[-1]["job"]["status"] == "done"
    assert bodies[-1]["job"]["progress"]["done"] == 3


async def test_callback_to_a_private_address_is_refused_at_submit(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(None)
    async with client_for(service) as client:
        payload = {"items": [{"url": item_urls(1)[0]}], "callback_url": "http://127.0.0.1:9/x"}
        resp = await client.post("/v1/jobs", json=payload)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "url_forbidden"
