"""Screenshots of the web page for the README: a real answer of the bundled model, and a batch
job over URLs served on loopback. Writes docs/img/web-page-result.png and web-page-batch.png.

    .venv/bin/python scripts/screenshot_ui.py [--video mdn-ie__flower.mp4]

Starts ``avserve serve`` (bundled model) on a free loopback port and headless Debian chromium
(``scripts/ensure_browser.sh``); needs ../shared/media.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from tests.api.browser import headless_chromium  # noqa: E402
from tests.api.servers import running_server, serve_command  # noqa: E402


def media_server(directory: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def full_page(driver: WebDriver, path: Path, width: int) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, int(height) + 140)  # + browser chrome of the headless window
    driver.save_screenshot(str(path))
    print(f"wrote {path.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", default="mdn-ie__flower.mp4")
    parser.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--width", type=int, default=1360)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    media = media_server(args.media)
    host = f"127.0.0.1:{media.server_address[1]}"
    env = {
        "AVSERVE_FETCH__ALLOW_HOSTS": json.dumps([host]),
        "AVSERVE_LOG_LEVEL": os.environ.get("AVSERVE_LOG_LEVEL", "warning"),
    }
    with (
        tempfile.TemporaryDirectory() as logs,
        running_server(serve_command, env, Path(logs), ready_timeout_s=300) as server,
        headless_chromium(args.width, 1000) as driver,
    ):
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 300)
        wait.until(lambda d: "Server ready" in d.find_element(By.ID, "server-status").text)
        driver.find_element(By.ID, "file").send_keys(str(args.media / args.video))
        driver.find_element(By.ID, "classify-btn").click()
        wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())
        windows = driver.find_elements(By.CSS_SELECTOR, "#window-list button")
        if windows:  # show the best window's crop box over its frame
            windows[0].click()
            wait.until(
                lambda d: d.execute_script("return !document.getElementById('player').seeking")
            )
        full_page(driver, args.out / "web-page-result.png", args.width)

        driver.set_window_size(args.width, 1000)
        driver.find_element(By.ID, "tab-batch").click()
        urls = [f"http://{host}/{name}" for name in ("mmaction2__demo.mp4", "moviepy__chaplin.mp4")]
        urls.append(f"http://{host}/not-there.mp4")
        driver.find_element(By.ID, "urls").send_keys("\n".join(urls))
        Select(driver.find_element(By.ID, "batch-k")).select_by_value("2")
        driver.find_element(By.ID, "batch-btn").click()
        wait.until(lambda d: d.find_element(By.ID, "job-state").text in ("done", "failed"))
        driver.find_element(By.CSS_SELECTOR, "#job-items tbody tr details summary").click()
        full_page(driver, args.out / "web-page-batch.png", args.width)
    media.shutdown()


if __name__ == "__main__":
    main()
