"""The web page and the API docs are served by the gateway itself, offline (issue 15).

The browser tests are in ``test_web_page_e2e.py``; these check the HTTP side in-process.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from service.api.ui import STATIC_DIR
from tests.api.helpers import RecordingClassifier, serve_in_process
from tests.test_make_targets import dry_run

REPO = Path(__file__).resolve().parents[2]
_REFS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return [a or b for a, b in _REFS.findall(html)]


async def test_the_page_and_its_files_load_without_a_key_while_the_api_needs_one(
    make_settings: Any,
) -> None:
    settings = make_settings(api_keys="k-one")
    async with serve_in_process(settings, RecordingClassifier()) as (_, client):
        page = await client.get("/")
        assets = [await client.get(f"/ui/{name}") for name in ("app.js", "app.css")]
        models = await client.get("/v1/models")
        keyed = await client.get("/v1/models", headers={"X-API-Key": "k-one"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert all(a.status_code == 200 for a in assets)
    assert models.status_code == 401 and keyed.status_code == 200


async def test_the_page_references_only_its_own_origin(make_settings: Any) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (_, client):
        html = (await client.get("/")).text
        refs = [r for r in references(html) if not r.startswith(("#", "data:"))]
        answers = {r: (await client.get(r)).status_code for r in refs if r.startswith("/ui/")}
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert answers and set(answers.values()) == {200}, answers


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_load_their_assets_from_the_server(make_settings: Any, path: str) -> None:
    async with serve_in_process(make_settings(), RecordingClassifier()) as (_, client):
        html = (await client.get(path)).text
        refs = references(html)
        statuses = {r: (await client.get(r)).status_code for r in refs}
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    assert any(r.endswith(".js") for r in refs)
    assert all(r.startswith("/") for r in refs), refs
    assert set(statuses.values()) == {200}, statuses


def test_the_static_files_ship_in_the_package() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = meta["tool"]["setuptools"]["package-data"]["service.api"]
    files = [p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.iterdir()]
    assert {"static/index.html", "static/app.js", "static/app.css"} <= set(files)
    assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)


def test_make_test_installs_the_browser_before_running_pytest() -> None:
    lines = dry_run("test")
    browser = next(i for i, line in enumerate(lines) if "ensure_browser.sh" in line)
    assert browser < next(i for i, line in enumerate(lines) if "-m pytest" in line)
