"""How ``avserve classify`` prints its answers: a table, tab-separated values or JSON lines.

Every format keeps the input order and gives errors their own columns (``error`` code and
``message``), so the output reads the same on a terminal, in a pipe or in a file. JSON lines
are written as soon as every earlier file is done (streaming, yet in input order).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from service.errors import AvserveError
from service.schemas import ClassifyResult

Format = Literal["table", "tsv", "json"]
Outcome = ClassifyResult | AvserveError

COLUMNS = (
    "file",
    "verdict",
    "label",
    "score",
    "policy",
    "k",
    "audio",
    "gmacs",
    "pct_dense",
    "ms",
    "warnings",
    "error",
    "message",
)


def json_line(path: Path, outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, AvserveError):
        return {"file": str(path), "error": outcome.to_dict()}
    return {"file": str(path), **outcome.model_dump(mode="json")}


def row(path: Path, outcome: Outcome) -> dict[str, str]:
    """One file's cells (the first head's top label), errors in ``error``/``message``."""
    cells = dict.fromkeys(COLUMNS, "")
    cells["file"] = str(path)
    if isinstance(outcome, AvserveError):
        cells["error"], cells["message"] = outcome.code, outcome.message
        return cells
    best = next(iter(outcome.heads.values()))[0]
    verdict = next(iter(outcome.verdicts.values()), None)
    cells.update(
        verdict=""
        if verdict is None
        else verdict.verdict + (f" ({verdict.reason})" if verdict.reason else ""),
        label=best.label,
        score=f"{best.score:.4f}",
        policy=outcome.policy,
        k=str(outcome.k),
        audio=outcome.audio,
        gmacs=f"{outcome.compute.gmacs:.2f}",
        pct_dense=f"{100 * outcome.compute.fraction_of_dense:.1f}",
        ms=f"{outcome.timings_ms.get('total', 0.0):.0f}",
        warnings=",".join(w.code for w in outcome.warnings),
    )
    return cells


class OrderedJsonWriter:
    """Writes each file's JSON line once it and every file before it are done."""

    def __init__(self, paths: Sequence[Path], out: TextIO | None = None) -> None:
        self.paths = list(paths)
        self.out = out or sys.stdout
        self._done: dict[int, Outcome] = {}
        self._next = 0

    def __call__(self, index: int, outcome: Outcome) -> None:
        self._done[index] = outcome
        while self._next in self._done:
            line = json_line(self.paths[self._next], self._done.pop(self._next))
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()
            self._next += 1


def _tsv_cell(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def write_tsv(results: Sequence[tuple[Path, Outcome]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write("\t".join(COLUMNS) + "\n")
    for path, outcome in results:
        cells = row(path, outcome)
        out.write("\t".join(_tsv_cell(cells[c]) for c in COLUMNS) + "\n")


def write_table(results: Sequence[tuple[Path, Outcome]], out: TextIO | None = None) -> None:
    """A rich table; off a terminal it is as wide as its content (nothing is cut)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = out or sys.stdout
    terminal = out.isatty()
    # Off a terminal rich would assume 80 columns and cut the names: give it room instead.
    console = Console(file=out, width=None if terminal else 100_000)
    table = Table(
        title="avserve classify" if terminal else None,
        box=box.HEAVY_HEAD if terminal else box.SIMPLE,
        show_edge=terminal,
    )
    for col in COLUMNS:
        table.add_column(col, no_wrap=not terminal or col != "message", overflow="fold")
    for path, outcome in results:
        cells = row(path, outcome)
        table.add_row(*(Text(cells[c], style="red" if c == "error" else "") for c in COLUMNS))
    console.print(table)
