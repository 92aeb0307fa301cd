"""The settings reference as a Markdown table (the README's configuration section)."""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from service.settings import ENV_PREFIX, Settings
from service.settings_types import LIST_SYNTAX


def _type_name(ann: Any) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin is Literal:
        return " / ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        parts = [_type_name(a) for a in args if a is not type(None)]
        return " / ".join(parts) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])} ({LIST_SYNTAX})"
    if ann is SecretStr:
        return "secret"
    return str(getattr(ann, "__name__", ann))


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
        return "[]" if value == [] else ""
    value = info.default
    if value is None:
        return "unset"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def settings_markdown_table() -> str:
    """The README table of every setting: env var, type, default, description."""
    rows = ["| env var | type | default | description |", "|---|---|---|---|"]

    def emit(prefix: str, model: type[BaseModel]) -> None:
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                emit(f"{prefix}{name.upper()}__", ann)
                continue
            env = f"`{prefix}{name.upper()}`"
            if name == "redis_url":
                env = "`REDIS_URL` / `AVSERVE_REDIS_URL`"
            desc = (info.description or "").replace("|", "\\|")
            rows.append(
                f"| {env} | {_type_name(info.annotation)} | {_default_text(info)} | {desc} |"
            )

    emit(ENV_PREFIX, Settings)
    return "\n".join(rows)


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def replace_table(markdown: str) -> str:
    """``markdown`` with the text between the settings-table markers replaced by the table."""
    head, sep, rest = markdown.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"markers {START} ... {END} not found")
    return f"{head}{START}\n{settings_markdown_table()}\n{END}{tail}"


if __name__ == "__main__":
    # python -m service.settings_doc README.md: refresh the README's configuration table.
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(replace_table(path.read_text(encoding="utf-8")), encoding="utf-8")
