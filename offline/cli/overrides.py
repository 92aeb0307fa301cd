"""``key=value`` overrides of a config on the command line (shared by the train commands)."""

from __future__ import annotations

import json
from typing import Any

import typer


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists, booleans)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"override {item!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out
