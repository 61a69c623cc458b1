"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium), against a real worker: seller photos uploaded over HTTP and processed by the
pipeline, then the page's before/after images, its budget figures and its console.

Screenshots go to .imgstream/screenshots/ (printed; run with -s to see the paths).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN_KEY, API_KEY, ROOT, RUN_ID
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SELLER = f"dash-{RUN_ID}"
# One photo of each of four kinds of listing from the shared seller set.
KINDS = ("dress", "shoes", "hat", "pants")
SCREENSHOTS = ROOT / ".imgstream" / "screenshots"

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup "
                "installs them when run as root)", allow_module_level=True)


def _photos(tmp_path: Path) -> list[Path]:
    """Four seller photos (the shared set beside the repository or IMGSTREAM_SHARED); the
    generated samples where that set is not on the machine."""
    shared = ROOT.parent / "shared"
    if not shared.is_dir() and os.environ.get("IMGSTREAM_SHARED"):
        shared = Path(os.environ["IMGSTREAM_SHARED"])
    sellers = shared / "images" / "sellers"
    if sellers.is_dir():
        return [sorted((sellers / kind).glob("*.jpg"))[0] for kind in KINDS]
    from imaging.samples import generate_sample_batch

    paths = []
    for sample in generate_sample_batch(count=4):
        path = tmp_path / sample.name
        path.write_bytes(sample.data)
        paths.append(path)
    return paths


def _ai_eligible(folder: Path) -> Path:
    """A small, blurred mug on a cluttered desk: the default profile plans a paid upscale
    for it, so the day's budget has something settled to show."""
    import cv2
    import numpy as np

    from imaging.samples import render_product_scene

    bgr = render_product_scene(np.random.default_rng(11), product="mug", background="desk",
                               width=400, height=300)
    bgr = cv2.GaussianBlur(bgr, (0, 0), 1.5)
    path = folder / "small-blurred-mug.jpg"
    path.write_bytes(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return path


@pytest.fixture(scope="module")
def uploaded(worker, tmp_path_factory) -> list[str]:
    """Image ids of the uploaded photos, once every one of them is completed or skipped."""
    ids = []
    folder = tmp_path_factory.mktemp("dash")
    for path in [*_photos(folder), _ai_eligible(folder)]:
        with path.open("rb") as handle:
            response = requests.post(f"{worker.base_url}/api/images/upload",
                                     headers={"X-API-Key": API_KEY},
                                     data={"seller_id": SELLER, "sku_id": path.stem[:40]},
                                     files={"file": (path.name, handle, "image/jpeg")},
                                     timeout=60)
        assert response.status_code in (200, 201), response.text
        ids.append(response.json()["image_id"])

    def finished():
        statuses = [requests.get(f"{worker.base_url}/api/images/{i}", timeout=10,
                                 headers={"X-API-Key": API_KEY}).json().get("status")
                    for i in ids]
        assert "failed" not in statuses, statuses
        return all(s in ("completed", "skipped") for s in statuses)

    wait_for(finished, timeout=300, interval=1.0)
    return ids


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1440,1000", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver) -> list[dict]:
    """Console entries at error level since the last call (reading clears the buffer)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _loaded(driver, at_least: int) -> bool:
    return int(driver.execute_script("return document.body.dataset.loaded || 0")) >= at_least


def _screenshot(driver, name: str) -> Path:
    """The whole page, beyond the window (Chromium's DevTools capture)."""
    import base64

    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{RUN_ID}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    return path


def _images_state(driver, image_ids: list[str]) -> dict[str, dict[str, int]]:
    """naturalWidth of each photo card's before and after <img> (0: not loaded)."""
    return driver.execute_script("""
        const result = {};
        for (const id of arguments[0]) {
          const card = document.querySelector(`article.photo[data-image-id="${id}"]`);
          if (!card) continue;
          const width = (sel) => {
            const img = card.querySelector(sel);
            return img && img.complete ? img.naturalWidth : 0;
          };
          result[id] = {before: width("img.img-before"), after: width("img.img-after"),
                        steps: card.querySelectorAll(".steps-slot .chip").length};
        }
        return result;""", image_ids)


def _money(text: str) -> float:
    match = re.fullmatch(r"\$(\d+\.\d+)", text.strip())
    assert match, f"not a dollar amount: {text!r}"
    return float(match.group(1))


def _costs(worker) -> dict:
    response = requests.get(f"{worker.base_url}/api/stats/costs",
                            headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_asks_for_a_key_then_shows_photos_budget_and_pipeline(
        worker, uploaded, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    url = f"{worker.base_url}/dashboard?seller_id={SELLER}"
    browser.get(url)
    # This worker has keys configured: without one the API answers 401 and the page asks.
    wait_for(lambda: browser.find_element(By.ID, "keybox").is_displayed(), timeout=30)
    wait_for(lambda: _loaded(browser, 1), timeout=30)
    _screenshot(browser, "dashboard-needs-key")
    browser.get_log("browser")  # the 401s just seen are logged as errors by Chromium

    browser.find_element(By.ID, "api-key").send_keys(ADMIN_KEY)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    # The key is kept: a fresh load of the page needs no prompt and logs nothing.
    browser.get(url)
    wait_for(lambda: _loaded(browser, 1), timeout=60)
    assert not browser.find_element(By.ID, "keybox").is_displayed()
    assert browser.execute_script("return localStorage.getItem('imgstream.apiKey')") == ADMIN_KEY

    # Every uploaded photo shows, its before and after images really decoded, its steps.
    def all_shown():
        state = _images_state(browser, uploaded)
        ok = len(state) == len(uploaded) and all(
            s["before"] > 0 and s["after"] > 0 and s["steps"] > 0 for s in state.values())
        return state if ok else None

    state = wait_for(all_shown, timeout=60, interval=0.5)
    assert set(state) == set(uploaded)
    cards = browser.find_elements(By.CSS_SELECTOR, "article.photo")
    assert {c.get_attribute("data-image-id") for c in cards} == set(uploaded)  # seller filter
    for card in cards:
        text = card.text
        assert "before" in text and "after" in text and "AI cost $" in text, text
        assert "→" in text, text  # the tier and score move

    # The budget figures are the API's, to the micro-dollar.
    def budget_matches():
        before = _costs(worker)
        page = {el.get_attribute("data-budget"): _money(el.text)
                for el in browser.find_elements(By.CSS_SELECTOR, "[data-budget]")}
        after = _costs(worker)
        if before != after:  # a refresh raced a settlement: read again
            return None
        expected = {k: round(before[k], 6) for k in
                    ("cap_usd", "settled_usd", "reserved_usd", "remaining_usd")}
        return (page, expected) if page == expected else None

    browser.find_element(By.ID, "refresh").click()
    page, expected = wait_for(budget_matches, timeout=30, interval=1.0)
    assert page == expected
    costs = _costs(worker)
    assert costs["settled_usd"] > 0, costs  # the small blurred mug's paid upscale
    assert browser.find_elements(By.CSS_SELECTOR, ".chip.ai")  # shown as an (ai) step
    for operation, value in costs["settled_by_operation_usd"].items():
        shown = browser.find_element(By.CSS_SELECTOR, f'[data-op-settled="{operation}"]').text
        assert _money(shown) == round(value, 6), (operation, shown, value)

    # The quality and pipeline panels drew from their endpoints; the seller filter narrows
    # the quality figures to this seller's photos.
    assert browser.find_element(By.ID, "q-photos").text == str(len(uploaded))
    assert browser.find_elements(By.CSS_SELECTOR, "#tier-chart svg rect")
    assert browser.find_elements(By.CSS_SELECTOR, "#agents table tbody tr")
    assert browser.find_element(By.ID, "health").text == "healthy"

    # The filter narrows by status: none of these photos failed.
    Select(browser.find_element(By.ID, "f-status")).select_by_visible_text("failed")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, "article.photo"), timeout=30)
    assert "status=failed" in browser.current_url

    browser.get(url)
    wait_for(lambda: _loaded(browser, 1) and all_shown(), timeout=60)
    _screenshot(browser, "dashboard")
    errors = _errors(browser)
    assert errors == [], errors
