"""The package layering the README promises: models is pure torch, the server never needs the
offline half (except the CLI, which registers its command groups)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_packages(package: str) -> dict[Path, set[str]]:
    out: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[path.relative_to(ROOT)] = names
    return out


@pytest.mark.parametrize(("package", "forbidden"), [("models", {"service", "offline"})])
def test_models_are_pure_torch_and_import_no_serving_or_offline_code(
    package: str, forbidden: set[str]
) -> None:
    bad = {str(p): sorted(n & forbidden) for p, n in _imported_packages(package).items()}
    assert {p: n for p, n in bad.items() if n} == {}


def test_service_imports_offline_only_from_the_cli_registry() -> None:
    users = {str(p) for p, n in _imported_packages("service").items() if "offline" in n}
    assert users <= {"service/cli/__init__.py"}


def test_offline_code_no_longer_lives_under_service() -> None:
    for gone in ("data", "evaluation", "glance_data.py", "glance_training.py"):
        assert not (ROOT / "service" / gone).exists(), gone
