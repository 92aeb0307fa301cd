"""Typed errors shared by every layer.

Each error carries a stable machine-readable ``code``; the HTTP status is derived from the
code in one table so that media, queue and API layers cannot disagree about it.
"""

from __future__ import annotations

# code -> HTTP status. Unknown codes map to 500 but still render as the JSON error shape.
HTTP_STATUS: dict[str, int] = {
    # request shape / options
    "invalid_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "model_not_found": 404,
    "job_not_found": 404,
    "conflict": 409,
    "idempotency_conflict": 409,
    # media
    "unsupported_container": 415,
    "unsupported_codec": 415,
    "no_video_stream": 422,
    "undecodable": 422,
    "empty_file": 422,
    "too_long": 413,
    "too_large": 413,
    "timeout": 408,
    # URL fetch
    "url_invalid": 400,
    "url_forbidden": 403,
    "url_unreachable": 422,
    # capacity / lifecycle
    "overloaded": 429,
    "queue_full": 429,
    "quota_exceeded": 429,
    "insufficient_storage": 507,
    "body_timeout": 408,
    "client_closed": 499,
    "cancelled": 499,  # work stopped because nobody waits for it any more
    "queue_unavailable": 503,
    "deadline_exceeded": 504,
    "shutting_down": 503,
    "not_ready": 503,
    "worker_crashed": 500,
    "internal": 500,
}


class AvserveError(Exception):
    """Base class of every error that reaches a user: ``code`` is stable, ``message`` is prose."""

    code: str = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (decode workers): keep code and message on pickling.
        return (_rebuild, (type(self), self.message, self.code, self.retry_after_s))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


def _rebuild(
    cls: type[AvserveError], message: str, code: str, retry_after_s: float | None
) -> AvserveError:
    err = cls.__new__(cls)
    AvserveError.__init__(err, message, code=code, retry_after_s=retry_after_s)
    return err


class MediaError(AvserveError):
    """Refusal to open, probe or decode a media file (codes: unsupported_container, too_long, ...)."""

    code = "undecodable"


class FetchError(AvserveError):
    """Refusal to fetch a URL (codes: url_invalid, url_forbidden, url_unreachable, too_large, timeout)."""

    code = "url_unreachable"


class CapacityError(AvserveError):
    """The service is overloaded, draining, or a deadline passed."""

    code = "overloaded"
