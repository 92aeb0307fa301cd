"""Keep secrets in URLs out of logs and error messages.

Presigned URLs carry their signature in the query string and some URLs carry credentials
(``user:pass@``). Wherever a URL is logged or echoed in an error, only scheme, host, port and
path remain: ``https://bucket.s3.example.com/v.mp4?[redacted]``. ``RedactingFilter`` applies
this to every log record passing a handler, third-party ones included (httpx logs each
request URL at INFO), message, arguments and traceback text alike.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s\"'<>`]+")
_MARK = "[redacted]"


def redact_url(url: str) -> str:
    """``url`` without credentials, query string or fragment (each replaced by a marker)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not parseable (a bad port, say): cut by hand
        cut = re.search(r"[?#]", url)
        head = url[: cut.start()] if cut else url
        scheme, sep, rest = head.partition("://")
        if "@" in rest:
            head = f"{scheme}{sep}{_MARK}@{rest.rsplit('@', 1)[1]}"
        return head + (f"{cut.group(0)}{_MARK}" if cut else "")
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    if "@" in parts.netloc:
        netloc = f"{_MARK}@{netloc}"
    out = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query or url.rstrip().endswith("?"):
        out += "?" + _MARK
    if parts.fragment:
        out += "#" + _MARK
    return out


def redact_text(text: str) -> str:
    """Every URL inside free text redacted (``redact_url``)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback text with ``redact_text``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (default: root). Idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
