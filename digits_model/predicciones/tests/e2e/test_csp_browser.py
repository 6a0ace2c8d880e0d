"""The page and the API docs under the default Content-Security-Policy, in real Chromium:
nothing is blocked, the docs page renders every endpoint from our own files."""

from __future__ import annotations

import time

import pytest

from predicciones.tests.conftest import chromium_paths, require

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = chromium_paths()
    require(chromium is not None and chromedriver is not None, "chromium/chromedriver missing")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


def console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_page_runs_under_the_policy(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server.url("/"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the script fills the model list from /models/
        options = browser.find_elements(By.CSS_SELECTOR, "#model option")
        if len(options) > 1:
            break
        time.sleep(0.2)
    assert len(options) > 1, "the page's script did not run"
    drop = browser.find_element(By.ID, "drop")
    assert drop.value_of_css_property("border-top-style") == "dashed"  # the stylesheet applied
    assert console_errors(browser) == []


def test_api_docs_render_offline_under_the_policy(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server.url("/api/docs/"))
    deadline = time.monotonic() + 20
    paths: list[str] = []
    while time.monotonic() < deadline:
        paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
        if "/predict/" in paths:
            break
        time.sleep(0.3)
    assert "/predict/" in paths and "/feedback/" in paths
    assert console_errors(browser) == []
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(server.base_url) for url in requested), requested
