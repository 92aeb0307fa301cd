"""Structured logs: one JSON object per line, carrying the current request id."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from service.redact import RedactingFilter

# Set by the request middleware (and by a worker per job item); every log record emitted
# while serving a request carries it. Defined with the tracing helpers so the queue reads it
# without importing the gateway.
from service.tracing import log_ids, request_id_var

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra fields, "exc"}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        out.update(log_ids())  # trace_id, span_id while tracing is on
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_text:  # set (and redacted) by RedactingFilter
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "info", *, json_lines: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stderr in one format. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())  # no URL query strings or credentials in any log line
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Our middleware writes one access line per request with the request id; uvicorn's is noise.
    logging.getLogger("uvicorn.access").disabled = True
