"""SSRF-safe download of a user-supplied URL into a temp file.

http/https only, no credentials in the URL. Each hop's host is resolved once and checked by
``netguard``; the request then goes to that IP literal with the original ``Host`` header and,
for https, the original name as TLS SNI and certificate hostname (httpcore's ``sni_hostname``
extension), so no second DNS lookup can redirect the connection. Redirects are followed by
hand (at most ``max_redirects``), each target checked again. The body is streamed raw
(``Accept-Encoding: identity``, no transparent decompression) into a temp file with a byte cap
and one deadline for the whole fetch; Content-Type is recorded but never trusted. On any error
or cancellation the temp file is removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from service.errors import FetchError
from service.media.netguard import (
    ALLOW_HINT,
    forbidden_reason,
    parse_networks,
    resolve_checked,
)
from service.media.policy import FetchPolicy
from service.media.upload import remove_quietly
from service.redact import redact_text

_REDIRECTS = {301, 302, 303, 307, 308}
OnBytes = Callable[[int], None]
_MAX_URL = 8192


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded temp file. Use as a context manager (or call ``remove``) to delete it."""

    path: Path
    bytes: int
    final_url: str
    content_type: str | None

    def __fspath__(self) -> str:
        return str(self.path)

    def remove(self) -> None:
        remove_quietly(self.path)

    def __enter__(self) -> FetchedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


def check_url(url: str) -> httpx.URL:
    """Parse and validate the shape of a URL (scheme, host, no credentials)."""
    if len(url) > _MAX_URL:
        raise FetchError("URL is too long", code="url_invalid")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise FetchError(f"invalid URL: {redact_text(str(e))}", code="url_invalid") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError("only http and https URLs can be fetched", code="url_invalid")
    if not parsed.host:
        raise FetchError("URL has no host", code="url_invalid")
    if parsed.userinfo:
        raise FetchError("credentials in URLs are not accepted", code="url_invalid")
    return parsed


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as an IP literal names, in any spelling the resolver takes
    (``127.0.0.1``, ``127.1``, ``2130706433``, ``0x7f.1``, ``[::1]``); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:  # inet_aton accepts the legacy shorthands getaddrinfo would resolve
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def precheck_url(url: str, policy: FetchPolicy) -> None:
    """What can be refused without DNS: the URL's shape, credentials, and a host that is a
    forbidden IP literal. Used at job submission; ``fetch_url`` checks again (and resolves)."""
    parsed = check_url(url)
    address = _literal_ip(parsed.host)
    if address is None or _exempt(parsed, policy):
        return
    why = forbidden_reason(address, parse_networks(policy.allow_private_networks))
    if why is not None:
        raise FetchError(
            f"the URL names a {why} address, which is not allowed{ALLOW_HINT}",
            code="url_forbidden",
        )


def _exempt(url: httpx.URL, policy: FetchPolicy) -> bool:
    host = url.host.lower()
    port = url.port or (443 if url.scheme == "https" else 80)
    entries = {e.lower() for e in policy.allow_hosts}
    return host in entries or f"{host}:{port}" in entries


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port else host


async def _stream_body(
    response: httpx.Response, dest: Path, policy: FetchPolicy, on_bytes: OnBytes | None
) -> tuple[Path, int]:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(
            f"the resource is {declared} bytes, more than the limit of {policy.max_bytes}",
            code="too_large",
        )
    fd, name = tempfile.mkstemp(prefix="avserve-fetch-", suffix=".media", dir=dest)
    path = Path(name)
    total = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in response.aiter_raw(policy.chunk_bytes):
                total += len(chunk)
                if total > policy.max_bytes:
                    raise FetchError(
                        f"the resource is larger than the limit of {policy.max_bytes} bytes",
                        code="too_large",
                    )
                if on_bytes is not None:
                    on_bytes(len(chunk))  # a disk budget may refuse before the write
                await asyncio.to_thread(f.write, chunk)
    except BaseException:
        remove_quietly(path)
        raise
    return path, total


async def _fetch(
    url: str, dest_dir: Path, policy: FetchPolicy, on_bytes: OnBytes | None
) -> FetchedFile:
    allowed = parse_networks(policy.allow_private_networks)
    current = check_url(url)
    timeout = httpx.Timeout(policy.timeout_s)
    verify: ssl.SSLContext | bool = True
    if policy.ca_bundle:
        verify = ssl.create_default_context(cafile=policy.ca_bundle)
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=timeout, verify=verify
    ) as client:
        for _hop in range(policy.max_redirects + 1):
            port = current.port or (443 if current.scheme == "https" else 80)
            target = await resolve_checked(
                current.host, port, allowed, exempt=_exempt(current, policy)
            )
            pinned = current.copy_with(host=target.address)  # connect to the checked IP
            headers = {
                "Host": _host_header(current),
                "Accept-Encoding": "identity",
                "User-Agent": policy.user_agent,
            }
            extensions = {"sni_hostname": current.host} if current.scheme == "https" else {}
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError("redirect without a location", code="url_unreachable")
                    current = check_url(str(current.join(location)))
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchError(
                        f"the server answered HTTP {response.status_code}",
                        code="url_unreachable",
                    )
                path, size = await _stream_body(response, dest_dir, policy, on_bytes)
                return FetchedFile(path, size, str(current), response.headers.get("content-type"))
            finally:
                await response.aclose()
    raise FetchError(f"more than {policy.max_redirects} redirects", code="url_unreachable")


async def fetch_url(
    url: str,
    dest_dir: Path,
    policy: FetchPolicy | None = None,
    *,
    on_bytes: OnBytes | None = None,
) -> FetchedFile:
    """Download ``url`` into a new temp file under ``dest_dir``. Raises FetchError.

    ``on_bytes(n)`` is called before each chunk is written (a disk budget); whatever it raises
    aborts the download, and the temp file is removed.
    """
    policy = policy or FetchPolicy()
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await _fetch(url, Path(dest_dir), policy, on_bytes)
    except TimeoutError as e:
        raise FetchError(f"fetching took longer than {policy.timeout_s:g} s", code="timeout") from e
    except httpx.TimeoutException as e:
        raise FetchError("the server was too slow", code="timeout") from e
    except httpx.HTTPError as e:
        raise FetchError(f"cannot fetch the URL: {type(e).__name__}", code="url_unreachable") from e
