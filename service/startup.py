"""Start-up checks that turn a misconfiguration into one line naming the problem and the fix.

``avserve serve`` (and ``avserve classify``) call ``load_settings`` and ``preflight`` before
anything heavy happens, and ``serve`` binds its listening socket before the models load, so
a port already in use is reported before "ready", not after. ``StartupError`` carries the
line; the CLI prints it and exits with status 2 (a traceback only with debug logging).
"""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.settings import ENV_PREFIX, Settings

EXIT_CONFIG = 2  # the conventional "usage / configuration" exit status
_SECRET_FIELDS = {"api_keys"}
_FIX = "fix it in the environment or .env"


class StartupError(Exception):
    """A configuration problem, as one line that says what is wrong and how to fix it."""


def env_name(loc: tuple[Any, ...]) -> str:
    """The environment variable of a settings field location (``("fetch", "allow_hosts", 0)``)."""
    names = [str(part) for part in loc if isinstance(part, str)]
    if not names:
        return "settings"
    if names == ["redis_url"]:
        return "REDIS_URL"
    if len(names) == 1 and names[0].isupper():  # an alias that is an env var already
        return names[0]
    return ENV_PREFIX + "__".join(n.upper() for n in names)


def _describe(error: Any) -> str:
    loc = tuple(error.get("loc", ()))
    msg = str(error.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    name = env_name(loc)
    shown = ""
    value = error.get("input")
    secret = any(part in _SECRET_FIELDS for part in loc)
    if isinstance(value, str | int | float) and not secret and len(str(value)) <= 80:
        shown = f"={value}"
    return f"invalid setting {name}{shown}: {msg}; {_FIX}"


def describe_settings_error(exc: ValidationError | SettingsError) -> str:
    """One line for the first problem (and how many others there are)."""
    if isinstance(exc, SettingsError):
        match = re.search(r'field "([^"]+)"', str(exc))
        field = match.group(1) if match else ""
        name = env_name((field,)) if field else "a setting"
        return (
            f"invalid setting {name}: its value is not valid JSON (nested groups and lists take "
            f"JSON; lists also take a comma-separated list); {_FIX}"
        )
    errors = exc.errors()
    line = _describe(errors[0]) if errors else str(exc)
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more invalid setting(s))"
    return line


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment, .env and ``overrides``; StartupError when invalid."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except (ValidationError, SettingsError) as e:
        raise StartupError(describe_settings_error(e)) from e


def debug_requested(settings: Settings | None = None, flag: str | None = None) -> bool:
    """Debug logging asked for (tracebacks are shown then), even when the settings are bad."""
    level = flag or (settings.log_level if settings else os.environ.get("AVSERVE_LOG_LEVEL"))
    return (level or "").lower() == "debug"


def check_model_dir(settings: Settings) -> Path:
    """The model directory, when it exists and holds at least one package."""
    from service.registry import discover_packages

    path = settings.resolved_model_dir()
    configured = settings.model_dir is not None
    where = f"AVSERVE_MODEL_DIR={path}" if configured else f"the bundled model folder {path}"
    fix = (
        "point AVSERVE_MODEL_DIR at a package (a folder with config.json and "
        "weights.safetensors) or at a folder of packages, or unset it to serve the bundled model"
        if configured
        else "restore it (git checkout models/zoo) or rebuild it with `make model`"
    )
    if not path.exists():
        raise StartupError(f"{where} does not exist; {fix}")
    if not path.is_dir():
        raise StartupError(f"{where} is a file, not a folder; {fix}")
    if not discover_packages(path):
        raise StartupError(
            f"{where} holds no model package (no config.json in it or in its sub-folders); {fix}"
        )
    return path


def check_api_keys(settings: Settings) -> None:
    """A configured key file must yield keys: auth never fails open on an empty secret."""
    try:
        settings.load_api_keys()
    except ValueError as e:
        raise StartupError(
            f"invalid setting AVSERVE_API_KEYS_FILE: {e}; put one key per line in it, or unset "
            "it to run without authentication"
        ) from e


def check_tmp_dir(settings: Settings) -> None:
    """``tmp_dir``, when set, must be a writable folder (uploads and downloads go there)."""
    path = settings.tmp_dir
    if path is None:
        return
    fix = "create it, or point AVSERVE_TMP_DIR at a writable folder (unset: the system temp)"
    if not path.is_dir():
        raise StartupError(f"AVSERVE_TMP_DIR={path} is not a folder; {fix}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(f"AVSERVE_TMP_DIR={path} is not writable; {fix}")


def bind_listener(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound now (so a clash is known before models load)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise StartupError(
            f"cannot bind to AVSERVE_HOST={host}: {e.strerror}; use an address of this machine "
            "(127.0.0.1 for local use, 0.0.0.0 for all interfaces)"
        ) from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another avserve?); stop that "
                f"process or choose another port: AVSERVE_PORT={port + 1} avserve serve, "
                f"avserve serve --port {port + 1}, or make serve PORT={port + 1}"
            ) from e
        if e.errno in (errno.EACCES, errno.EPERM):
            raise StartupError(
                f"no permission to listen on port {port}; use a port above 1023 (AVSERVE_PORT=8000)"
            ) from e
        if e.errno == errno.EADDRNOTAVAIL:
            raise StartupError(
                f"AVSERVE_HOST={host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0"
            ) from e
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror}") from e
    sock.set_inheritable(True)
    return sock
