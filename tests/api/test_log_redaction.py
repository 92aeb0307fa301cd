"""No URL query string (presigned signatures) or credentials in logs or error messages."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.api.logs import configure_logging
from service.media import FetchPolicy, fetch_url
from service.redact import redact_text, redact_url

SECRET = "X-Amz-Signature=0f3c9d7e5b1a"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://b.s3.example.com/v.mp4?" + SECRET, "https://b.s3.example.com/v.mp4?[redacted]"),
        (
            "http://user:pw@host:8080/a?x=1#frag",
            "http://[redacted]@host:8080/a?[redacted]#[redacted]",
        ),
        ("http://[::1]:9/p", "http://[::1]:9/p"),
        ("https://host/plain.mp4", "https://host/plain.mp4"),
        ("http://h:99999/?" + SECRET, "http://h:99999/?[redacted]"),
    ],
)
def test_urls_keep_only_scheme_host_port_and_path(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_urls_inside_text_are_redacted() -> None:
    text = f'failed on "https://h/v.mp4?{SECRET}" and http://u:p@h2/x (retrying)'
    out = redact_text(text)
    assert "0f3c9d7e5b1a" not in out and "u:p" not in out
    assert out == 'failed on "https://h/v.mp4?[redacted]" and http://[redacted]@h2/x (retrying)'


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """The service's log configuration (handler, format, filters), writing into a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("info")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_httpx_request_lines_and_tracebacks_carry_no_query_string(
    service_logs: io.StringIO,
    media_server: str,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    name = sorted(p.name for p in media_dir.glob("*.mp4"))[0]
    policy = FetchPolicy(allow_hosts=(media_server,))
    fetched = await fetch_url(f"http://{media_server}/{name}?{SECRET}", tmp_path, policy)
    fetched.remove()
    try:
        raise RuntimeError(f"processor failed on https://h/v.mp4?{SECRET}")
    except RuntimeError:
        logging.getLogger("avserve.test").exception("item failed: %s", f"http://h/?{SECRET}")
    err = service_logs.getvalue()
    assert "HTTP Request: GET" in err  # httpx did log the request ...
    assert "item failed" in err and "RuntimeError" in err
    assert "0f3c9d7e5b1a" not in err  # ... but never the signature
