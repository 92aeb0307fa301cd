"""The web page in a real headless browser against ``avserve serve`` on loopback (issue 15).

Real files from ../shared/media are uploaded through the page's own form; URLs are served by the
loopback media server the SSRF guard allows for these tests. Every test also checks the
browser's network log: the page requests nothing outside the server (except, for a URL request,
the video the user asked to play).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.api.browser import browser_available, headless_chromium, requested_urls
from tests.api.servers import ServerProcess, running_server, standin_command

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not browser_available(), reason="run scripts/ensure_browser.sh"),
]

TIMEOUT_S = 90


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with headless_chromium() as d:
        yield d


@pytest.fixture
def page(driver: WebDriver, pipeline_server: ServerProcess) -> Iterator[WebDriver]:
    driver.get(pipeline_server.url + "/")
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: "Server ready" in d.find_element(By.ID, "server-status").text
    )
    yield driver


def assert_only_server_requests(driver: WebDriver, server: ServerProcess, *also: str) -> list[str]:
    urls = [u for u in requested_urls(driver) if not u.startswith(("data:", "blob:"))]
    outside = [u for u in urls if not u.startswith(server.url + "/") and u not in also]
    assert urls and not outside, outside
    return urls


def wait_for_answer(driver: WebDriver) -> dict[str, Any]:
    """The page's outcome: the answer it shows, or a failure with its error box text."""
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: (
            d.find_element(By.ID, "result").is_displayed()
            or d.find_element(By.ID, "error").is_displayed()
        )
    )
    assert driver.find_element(By.ID, "result").is_displayed(), driver.find_element(
        By.ID, "error"
    ).text
    raw = driver.find_element(By.ID, "raw").get_attribute("textContent") or ""
    answer: dict[str, Any] = json.loads(raw)
    return answer


def client_rect(driver: WebDriver, selector: str) -> dict[str, float]:
    rect: dict[str, float] = driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {x: r.x, y: r.y, w: r.width, h: r.height};",
        selector,
    )
    return rect


def test_an_upload_shows_bars_verdicts_the_saliency_timeline_and_crop_boxes(
    page: WebDriver, pipeline_server: ServerProcess, media_dir: Path
) -> None:
    Select(page.find_element(By.ID, "k")).select_by_value("2")
    page.find_element(By.ID, "file").send_keys(str(media_dir / "mmaction2__test.avi"))
    page.find_element(By.ID, "classify-btn").click()
    answer = wait_for_answer(page)

    # bars: one row per returned label, as long as its score, for every head
    for head, scores in answer["heads"].items():
        section = page.find_element(By.CSS_SELECTOR, f".head[data-head='{head}']")
        rows = section.find_elements(By.CSS_SELECTOR, ".bar-row")
        assert [r.find_element(By.CLASS_NAME, "bar-label").text for r in rows] == [
            s["label"] for s in scores
        ]
        track = rows[0].find_element(By.CLASS_NAME, "bar-track").size["width"]
        fill = rows[0].find_element(By.CLASS_NAME, "bar-fill").size["width"]
        assert fill == pytest.approx(scores[0]["score"] * track, abs=2)
        verdict = section.find_element(By.CSS_SELECTOR, ".badge.verdict").text
        assert verdict.startswith(("recognised", "unknown"))
        assert (verdict == "unknown") == (answer["verdicts"][head]["verdict"] == "unknown")

    # the timeline: one point per scored snippet, one shaded rectangle per chosen window
    saliency, windows = answer["saliency"], answer["windows"]
    assert saliency and len(windows) == answer["k"] == 2
    assert len(page.find_elements(By.CSS_SELECTOR, "#timeline circle.pt")) == len(saliency)
    assert len(page.find_elements(By.CSS_SELECTOR, "#timeline rect.win")) == len(windows)

    # clicking a window on the timeline seeks into it: its crop box appears, scaled to the stage
    page.find_element(By.CSS_SELECTOR, "#timeline rect.win[data-window='1']").click()
    WebDriverWait(page, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".box[data-window='1']").is_displayed()
    )
    stage = client_rect(page, "#stage")
    box = client_rect(page, ".box[data-window='1']")
    x, y, w, h = windows[1]["box"]
    scale = stage["w"] / answer["video"]["width"]
    assert box["w"] == pytest.approx(w * scale, abs=2)
    assert box["h"] == pytest.approx(h * scale, abs=2)
    assert box["x"] - stage["x"] == pytest.approx(x * scale, abs=2)
    assert box["y"] - stage["y"] == pytest.approx(y * scale, abs=2)
    assert "% of dense 30-view" in page.find_element(By.ID, "compute").text
    assert answer["model"]["name"] in page.find_element(By.ID, "model-line").text
    assert_only_server_requests(page, pipeline_server)


def test_a_url_request_is_classified_and_played_from_that_url(
    page: WebDriver, pipeline_server: ServerProcess, media_server: str
) -> None:
    url = f"http://{media_server}/mdn-ie__flower.mp4"
    page.find_element(By.ID, "url").send_keys(url)
    Select(page.find_element(By.ID, "policy")).select_by_value("heuristic")
    page.find_element(By.ID, "classify-btn").click()
    answer = wait_for_answer(page)
    assert answer["policy"] == "heuristic" and "fetch" in answer["timings_ms"]
    assert page.find_element(By.ID, "player").get_attribute("src") == url
    assert len(page.find_elements(By.CSS_SELECTOR, "#timeline circle.pt")) == len(
        answer["saliency"]
    )
    # the only request outside the server is the video the user asked to play
    assert_only_server_requests(page, pipeline_server, url)


def test_a_hostile_file_shows_its_typed_error(
    page: WebDriver, pipeline_server: ServerProcess, tmp_path: Path
) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n" * 200)
    page.find_element(By.ID, "file").send_keys(str(fake))
    page.find_element(By.ID, "classify-btn").click()
    error = page.find_element(By.ID, "error")
    WebDriverWait(page, TIMEOUT_S).until(lambda d: error.is_displayed())
    code = error.find_element(By.CLASS_NAME, "error-code").text
    assert code in ("unsupported_container", "undecodable")
    assert "request id" in error.text and not page.find_element(By.ID, "result").is_displayed()
    assert_only_server_requests(page, pipeline_server)


def test_the_batch_page_follows_a_job_to_the_end(
    page: WebDriver, pipeline_server: ServerProcess, media_server: str
) -> None:
    page.find_element(By.ID, "tab-batch").click()
    urls = [f"http://{media_server}/mmaction2__demo.mp4", f"http://{media_server}/absent.mp4"]
    page.find_element(By.ID, "urls").send_keys("\n".join(urls))
    Select(page.find_element(By.ID, "batch-k")).select_by_value("1")
    page.find_element(By.ID, "batch-btn").click()
    WebDriverWait(page, TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "job-state").text in ("done", "failed", "cancelled")
    )
    rows = page.find_elements(By.CSS_SELECTOR, "#job-items tbody tr")
    assert [r.get_attribute("data-state") for r in rows] == ["done", "failed"]
    assert "url_unreachable" in rows[1].text
    assert "2 of 2 finished" in page.find_element(By.ID, "job-counts").text
    page.find_element(By.ID, "job-download").click()
    WebDriverWait(page, 20).until(
        lambda d: "Downloaded 2 result lines" in d.find_element(By.ID, "batch-status").text
    )
    assert not page.find_element(By.ID, "job-cancel").is_enabled()  # nothing left to cancel
    # a finished item opens in the viewer, its saliency on the timeline
    rows[0].find_element(By.CLASS_NAME, "show-item").click()
    answer = wait_for_answer(page)
    assert len(page.find_elements(By.CSS_SELECTOR, "#timeline circle.pt")) == len(
        answer["saliency"]
    )
    assert_only_server_requests(page, pipeline_server, urls[0])


def test_the_form_is_reachable_with_the_keyboard(page: WebDriver) -> None:
    reached = []
    for _ in range(20):
        ActionChains(page).send_keys(Keys.TAB).perform()
        active = page.switch_to.active_element
        reached.append(active.get_attribute("id") or active.tag_name)
    assert {"api-key", "tab-classify", "file", "url", "policy", "k", "classify-btn"} <= set(
        reached
    ), reached


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", ".redoc-wrap")])
def test_the_api_docs_render_from_local_assets(
    driver: WebDriver, pipeline_server: ServerProcess, path: str, ready: str
) -> None:
    requested_urls(driver)  # drop earlier pages' requests
    driver.get(pipeline_server.url + path)
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    assert_only_server_requests(driver, pipeline_server)


def test_the_api_key_typed_once_is_kept_and_sent(
    driver: WebDriver, tiny_model_dir: Path, media_dir: Path, tmp_path: Path
) -> None:
    env = {
        "AVSERVE_MODEL_DIR": str(tiny_model_dir),
        "AVSERVE_DEVICE": "cpu",
        "AVSERVE_API_KEYS": "page-key-1",
    }
    with running_server(functools.partial(standin_command, delay_s=0.0), env, tmp_path) as server:
        driver.get(server.url + "/")
        status = driver.find_element(By.ID, "server-status")
        WebDriverWait(driver, TIMEOUT_S).until(lambda d: "needs an API key" in status.text)
        driver.find_element(By.ID, "file").send_keys(str(media_dir / "mmaction2__demo.mp4"))
        driver.find_element(By.ID, "classify-btn").click()
        error = driver.find_element(By.ID, "error")
        WebDriverWait(driver, TIMEOUT_S).until(lambda d: error.is_displayed())
        assert error.find_element(By.CLASS_NAME, "error-code").text == "unauthorized"

        key = driver.find_element(By.ID, "api-key")
        key.send_keys("page-key-1", Keys.TAB)  # "change" stores it and asks the server again
        WebDriverWait(driver, TIMEOUT_S).until(lambda d: "Server ready" in status.text)
        driver.refresh()
        assert driver.find_element(By.ID, "api-key").get_attribute("value") == "page-key-1"
        driver.find_element(By.ID, "file").send_keys(str(media_dir / "mmaction2__demo.mp4"))
        driver.find_element(By.ID, "classify-btn").click()
        answer = wait_for_answer(driver)
        # the stand-in's answer has no windows and no saliency: the page says so
        assert answer["windows"] is None and answer["saliency"] is None
        assert "scores no snippets" in driver.find_element(By.ID, "timeline").text
        assert_only_server_requests(driver, server)
        driver.execute_script("localStorage.clear()")
