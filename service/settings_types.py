"""Setting value types that validate at start-up, not at the first request that uses them.

List settings accept either a comma-separated list (``10.0.0.0/8,fd00::/8``) or a JSON array
(``["10.0.0.0/8"]``): environment variables are written by people, and pydantic-settings alone
only parses JSON there. ``NoDecode`` hands the raw string to ``split_list``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

LIST_SYNTAX = "comma-separated or a JSON array"


def split_list(value: Any) -> Any:
    """A comma-separated string or a JSON array string -> list; anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a valid JSON array ({e.msg}); or write a comma list") from e
        if not isinstance(parsed, list):
            raise ValueError("expected a JSON array or a comma-separated list")
        return parsed
    return [part.strip() for part in text.split(",") if part.strip()]


def _cidrs(values: list[str]) -> list[str]:
    out = []
    for v in values:
        try:
            out.append(str(ipaddress.ip_network(v.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{v!r} is not a CIDR network (e.g. 10.0.0.0/8 or fd00::/8)") from None
    return out


_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$")


def _host_ports(values: list[str]) -> list[str]:
    for v in values:
        match = _HOST_PORT.match(v.strip())
        if match is None or (match.group(2) and not 0 < int(match.group(2)[1:]) < 65536):
            raise ValueError(f"{v!r} is not host or host:port (e.g. media.internal:8080)")
    return [v.strip() for v in values]


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError(f"{value!r} is not a device: cpu, cuda, cuda:N or auto")
    return value


def _redis_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
        raise ValueError(
            "must start with redis://, rediss:// or unix:// (e.g. redis://host:6379/0)"
        )
    return value


StrList = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
CidrList = Annotated[list[str], NoDecode, BeforeValidator(split_list), AfterValidator(_cidrs)]
HostPortList = Annotated[
    list[str], NoDecode, BeforeValidator(split_list), AfterValidator(_host_ports)
]
Device = Annotated[str, AfterValidator(_device)]
RedisUrl = Annotated[str | None, AfterValidator(_redis_url)]


def _empty_is_unset(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# ``AVSERVE_MODEL_DIR=`` (set but empty) means the default, not the current directory.
EmptyIsUnsetPath = Annotated[Path | None, BeforeValidator(_empty_is_unset)]
