"""SSRF-safe URL fetching: the address table, redirects, caps, pinning, TLS names, cleanup."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from service.errors import FetchError
from service.media import FetchPolicy, fetch_url, forbidden_reason, probe
from service.media.policy import MediaPolicy

LOOPBACK_OK = FetchPolicy(allow_private_networks=("127.0.0.0/8",), timeout_s=10.0)


# -- the address table ------------------------------------------------------------------------

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("fc00::1", "ula"),
    ("fd12:3456::1", "ula"),
    ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "ipv4-mapped"),
    ("::ffff:8.8.8.8", "ipv4-mapped"),
    ("::127.0.0.1", "ipv4-compatible"),
    ("2002:7f00:1::", "6to4"),
    ("2001::1", "teredo"),
    ("64:ff9b::a9fe:a9fe", "nat64-link-local"),  # NAT64 of 169.254.169.254
    ("192.0.2.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_internal_and_special_addresses_are_refused(address: str, reason: str) -> None:
    assert forbidden_reason(address) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(address) is None


def test_allow_list_opens_only_the_listed_range() -> None:
    from service.media.netguard import parse_networks

    allowed = parse_networks(["127.0.0.0/8"])
    assert forbidden_reason("127.0.0.1", allowed) is None
    assert forbidden_reason("10.0.0.1", allowed) == "private"
    assert forbidden_reason("::ffff:127.0.0.1", allowed) == "ipv4-mapped"


# -- URL shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/video.mp4",
        "gopher://example.com/",
        "data:video/mp4;base64,AAAA",
        "http:///nohost",
        "http://user:secret@example.com/video.mp4",
        "not a url at all",
        "http://example.com/" + "a" * 9000,
    ],
)
async def test_malformed_or_non_http_urls_are_invalid(tmp_path: Path, url: str) -> None:
    with pytest.raises(FetchError) as err:
        await fetch_url(url, tmp_path, FetchPolicy())
    assert err.value.code == "url_invalid"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/video.mp4",  # a name that resolves to loopback
        "http://127.0.0.1:9/",
        "http://127.1:9/",  # short and numeric spellings of loopback
        "http://2130706433:9/",
        "http://0x7f.0.0.1:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://0.0.0.0:9/",
    ],
)
async def test_urls_into_the_internal_network_are_forbidden(tmp_path: Path, url: str) -> None:
    with pytest.raises(FetchError) as err:
        await fetch_url(url, tmp_path, FetchPolicy())
    assert err.value.code == "url_forbidden"
    # the refusal names the setting that allows on-premise sources
    assert "AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS" in err.value.message


# -- a real HTTP server on loopback ------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    video: ClassVar[bytes] = b""
    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.seen.append({"path": self.path, "host": self.headers.get("Host")})
        path = self.path
        if path == "/video":
            self._send(200, Handler.video, Content_Type="text/html")  # lies about the type
        elif path.startswith("/hops/"):
            n = int(path.rsplit("/", 1)[1])
            self._send(302, Location="/video" if n == 0 else f"/hops/{n - 1}")
        elif path == "/to-metadata":
            self._send(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/to-private":
            self._send(307, Location="http://10.0.0.1/video")
        elif path == "/to-localhost":
            port = self.server.server_address[1]
            self._send(301, Location=f"http://localhost:{port}/video")
        elif path == "/big":
            self._send(200, b"x" * 4096)
        elif path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"x" * 1024)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x" * 1000)
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self._send(404, b"no")


@pytest.fixture
def server(media_dir: Path) -> Iterator[str]:
    Handler.video = (media_dir / "decord__video_90.mov").read_bytes()
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


async def test_allowed_loopback_fetch_ignores_the_content_type(server: str, tmp_path: Path) -> None:
    fetched = await fetch_url(f"{server}/video", tmp_path, LOOPBACK_OK)
    with fetched:
        assert fetched.bytes == len(Handler.video) == fetched.path.stat().st_size
        assert fetched.content_type == "text/html"
        assert probe(fetched.path, MediaPolicy()).video.rotation == 90  # the bytes decide
    assert not fetched.path.exists()  # the context manager removed it


async def test_loopback_needs_the_explicit_allow_list(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}/video", tmp_path, FetchPolicy())
    assert err.value.code == "url_forbidden"
    assert Handler.seen == []  # refused before connecting


async def test_up_to_three_redirects_are_followed(server: str, tmp_path: Path) -> None:
    fetched = await fetch_url(f"{server}/hops/2", tmp_path, LOOPBACK_OK)  # 3 redirects
    assert fetched.final_url.endswith("/video") and fetched.bytes == len(Handler.video)
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}/hops/3", tmp_path / "..", LOOPBACK_OK)
    assert err.value.code == "url_unreachable"


@pytest.mark.parametrize("route", ["/to-metadata", "/to-private"])
async def test_redirects_into_refused_ranges_are_forbidden(
    server: str, tmp_path: Path, route: str
) -> None:
    # the first hop is allowed (loopback is allow-listed here); the target is not
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}{route}", tmp_path, LOOPBACK_OK)
    assert err.value.code == "url_forbidden"
    assert [s["path"] for s in Handler.seen] == [route]
    assert not list(tmp_path.iterdir())


async def test_redirect_to_a_name_resolving_to_loopback_is_forbidden(
    server: str, tmp_path: Path
) -> None:
    # only this exact host:port is exempt (the settings' allow_hosts escape hatch)
    policy = FetchPolicy(allow_hosts=(server.removeprefix("http://"),))
    assert (await fetch_url(f"{server}/video", tmp_path, policy)).bytes == len(Handler.video)
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}/to-localhost", tmp_path, policy)
    assert err.value.code == "url_forbidden"


@pytest.mark.parametrize("route", ["/big", "/big-unannounced"])
async def test_byte_cap_stops_the_download_and_removes_the_file(
    server: str, tmp_path: Path, route: str
) -> None:
    policy = FetchPolicy(allow_private_networks=("127.0.0.0/8",), max_bytes=1000)
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}{route}", tmp_path, policy)
    assert err.value.code == "too_large"
    assert not list(tmp_path.iterdir())


async def test_slow_server_times_out_and_the_file_is_removed(server: str, tmp_path: Path) -> None:
    policy = FetchPolicy(allow_private_networks=("127.0.0.0/8",), timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}/slow", tmp_path, policy)
    assert err.value.code == "timeout"
    assert time.monotonic() - start < 2.0
    assert not list(tmp_path.iterdir())


async def test_cancelled_fetch_leaves_no_file(server: str, tmp_path: Path) -> None:
    task = asyncio.ensure_future(fetch_url(f"{server}/slow", tmp_path, LOOPBACK_OK))
    await asyncio.sleep(0.5)
    assert list(tmp_path.iterdir())  # mid-download
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not list(tmp_path.iterdir())


async def test_http_errors_are_unreachable(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        await fetch_url(f"{server}/missing", tmp_path, LOOPBACK_OK)
    assert err.value.code == "url_unreachable"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(FetchError) as err:
        await fetch_url(f"http://127.0.0.1:{port}/", tmp_path, LOOPBACK_OK)
    assert err.value.code == "url_unreachable"


# -- DNS pinning and TLS names ----------------------------------------------------------------


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``video.test`` resolves to loopback once, then to a private address (DNS rebinding)."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "video.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


async def test_connection_goes_to_the_address_that_was_checked(
    server: str, tmp_path: Path, rebinding_dns: list[str]
) -> None:
    port = server.rsplit(":", 1)[1]
    fetched = await fetch_url(f"http://video.test:{port}/video", tmp_path, LOOPBACK_OK)
    assert fetched.bytes == len(Handler.video)
    assert rebinding_dns == ["video.test"]  # resolved exactly once
    assert Handler.seen[0]["host"] == f"video.test:{port}"  # the server saw the real name


@pytest.fixture
def tls_server(tmp_path: Path, media_dir: Path) -> Iterator[tuple[int, Path, list[str]]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=video.test", "-addext", "subjectAltName=DNS:video.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    Handler.video = (media_dir / "decord__video_90.mov").read_bytes()
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port, cert, names
    httpd.shutdown()
    httpd.server_close()


async def test_https_to_a_pinned_address_verifies_the_real_hostname(
    tls_server: tuple[int, Path, list[str]], tmp_path: Path, rebinding_dns: list[str]
) -> None:
    port, cert, names = tls_server
    policy = FetchPolicy(allow_private_networks=("127.0.0.0/8",), ca_bundle=str(cert))
    fetched = await fetch_url(f"https://video.test:{port}/video", tmp_path, policy)
    assert fetched.bytes == len(Handler.video)
    assert names == ["video.test"] and rebinding_dns == ["video.test"]
    # the same server under a name its certificate does not carry is refused
    with pytest.raises(FetchError) as err:
        await fetch_url(f"https://127.0.0.1:{port}/video", tmp_path, policy)
    assert err.value.code == "url_unreachable"
